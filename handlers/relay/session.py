"""One SMTP session over aiosmtplib, kept alive across the battery and re-opened when dropped.

Every command goes through `command()`, which applies the per-command timeout (clipped to what is
left of the target's budget) and records the exact line sent and the reply received.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Literal

import aiosmtplib

from handlers.relay.diagnostics import (
    auth_mechanisms,
    certificate_info,
    first_hostname,
    parse_ehlo,
    size_limit,
)
from handlers.relay.model import Diagnostics, SmtpExchange, Verdict

TlsMode = Literal["auto", "require", "off"]
IMPLICIT_TLS_PORTS = (465,)


@dataclass(frozen=True)
class ProbeTimeouts:
    """Seconds. Every network wait has one of these; `budget` caps the whole target."""

    connect: float = 10.0
    banner: float = 30.0  # also covers the TLS handshake on implicit-TLS ports
    command: float = 30.0
    budget: float = 180.0
    # A greeting or reply this slow marks a tarpit (it delays strangers on purpose): from then
    # on the target gets `tarpit_budget` in all, so the answer comes in about that time instead
    # of after waiting out every test.
    tarpit_reply: float = 5.0
    tarpit_budget: float = 30.0


class SessionError(Exception):
    """The session ended; `exchange` is the evidence (what we sent, what came back or didn't)."""

    def __init__(self, message: str, exchange: SmtpExchange | None = None) -> None:
        super().__init__(message)
        self.exchange = exchange


class SessionDropped(SessionError):
    """The server closed the connection (or answered 421, which closes it)."""


class SessionTimeout(SessionError):
    """No answer within the command timeout: a tarpit, or a server that stopped talking."""


class SessionGarbled(SessionError):
    """The server's reply broke SMTP (a line or reply without end, a malformed line): hostile or
    broken; nothing it says after that can be trusted, so the connection is dropped."""


class BudgetExhausted(SessionError):
    """The target's total time budget ran out."""


class SessionSetupFailed(SessionError):
    """Could not get to a usable session: connect, banner, EHLO/HELO or required TLS failed."""

    def __init__(
        self, message: str, verdict: Verdict, exchange: SmtpExchange | None = None
    ) -> None:
        super().__init__(message, exchange)
        self.verdict = verdict  # UNREACHABLE (no TCP) or INCONCLUSIVE (talked but refused us)


@dataclass
class SessionState:
    """What the current connection has told us."""

    greeting_code: int | None = None
    esmtp: bool = False
    ehlo_reply: str = ""
    extensions: list[str] = field(default_factory=list)
    tls: bool = False
    errors: int = 0  # 4xx/5xx replies on this connection (servers slow down after ~10)


class ProbeSession:
    """Opens (and re-opens) the SMTP connection for one target and runs commands on it."""

    def __init__(
        self,
        address: str,
        port: int,
        server_hostname: str,
        helo_name: str,
        tls: TlsMode,
        timeouts: ProbeTimeouts,
        deadline: float,
        log: list[SmtpExchange],
        diagnostics: Diagnostics,
        implicit_tls_ports: tuple[int, ...] = IMPLICIT_TLS_PORTS,
    ) -> None:
        self.address = address
        self.port = port
        self.server_hostname = server_hostname  # SNI; the address when the user gave one
        self.helo_name = helo_name
        self.tls_mode: TlsMode = tls
        self.timeouts = timeouts
        self.deadline = deadline  # loop.time() when the target's budget ends
        self.log = log  # connects, greetings, EHLO, TLS, QUIT: the session-level transcript
        self.diagnostics = diagnostics
        # port 465 speaks TLS from the first byte whatever --tls says (--tls governs STARTTLS)
        self.implicit_tls = port in implicit_tls_ports
        self.tls_context = diagnostic_tls_context()
        self.source_ip = ""
        self.started = asyncio.get_running_loop().time()
        self.tarpit = ""  # what gave the tarpit away ("" until something did)
        self.sessions = 0
        self.state = SessionState()
        self._smtp: aiosmtplib.SMTP | None = None
        # a failed STARTTLS in auto mode: carry on in clear rather than not testing at all
        self._skip_starttls = False

    # -- timing ------------------------------------------------------------------------------

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    def sibling(self) -> ProbeSession:
        """Another session to the same server under the same deadline, for running tests side
        by side; it records into the same transcript and diagnostics without overwriting what
        the first session learnt (greeting, TLS, EHLO)."""
        other = ProbeSession(
            address=self.address,
            port=self.port,
            server_hostname=self.server_hostname,
            helo_name=self.helo_name,
            tls=self.tls_mode,
            timeouts=self.timeouts,
            deadline=self.deadline,
            log=self.log,
            diagnostics=self.diagnostics,
        )
        other.implicit_tls = self.implicit_tls
        other.started = self.started
        other.tarpit = self.tarpit
        other.sessions = 1  # not the first: the diagnostics are the first session's
        other._skip_starttls = self._skip_starttls
        return other

    def elapsed(self) -> float:
        return asyncio.get_running_loop().time() - self.started

    def _note_speed(self, what: str, started: float) -> None:
        seconds = time.perf_counter() - started
        if self.tarpit or seconds < self.timeouts.tarpit_reply:
            return
        self.tarpit = f"{what} took {seconds:.1f} s"
        self.deadline = min(self.deadline, self.started + self.timeouts.tarpit_budget)

    def _limit(self, timeout: float, what: str) -> float:
        left = self.remaining()
        if left <= 0:
            raise BudgetExhausted(
                f"{self._budget_text()} ran out before {what}",
                SmtpExchange(what, None, "not sent: time budget exhausted", 0.0),
            )
        return min(timeout, left)

    def _budget_text(self) -> str:
        if self.tarpit:
            return f"the tarpit budget of {self.timeouts.tarpit_budget:g}s"
        return f"the target's time budget of {self.timeouts.budget:g}s"

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    # -- opening -----------------------------------------------------------------------------

    async def open(self) -> None:
        """TCP connect, greeting, EHLO (HELO fallback), STARTTLS per the TLS mode."""
        self.close()
        self.state = SessionState()
        first = self.sessions == 0
        self.sessions += 1
        self.diagnostics.sessions += 1  # shared by the sessions a tarpit's tests run over
        sock = await self._connect_socket()
        smtp = aiosmtplib.SMTP(
            hostname=self.server_hostname,
            local_hostname=self.helo_name,
            timeout=self.timeouts.command,
            use_tls=self.implicit_tls,
            start_tls=False,
            validate_certs=False,
            tls_context=self.tls_context,
        )
        started = time.perf_counter()
        label = "(TLS handshake and greeting)" if self.implicit_tls else "(greeting)"
        try:
            response = await smtp.connect(
                sock=sock, timeout=self._limit(self.timeouts.banner, label)
            )
        except aiosmtplib.SMTPConnectResponseError as exc:
            exchange = self._record(label, exc.code, exc.message, started)
            if first:
                self._note_banner(exc.code, exc.message, started)
            raise SessionSetupFailed(
                f"the server refused the session at the greeting: {exc.code} {exc.message}",
                Verdict.INCONCLUSIVE,
                exchange,
            ) from None
        except aiosmtplib.SMTPConnectTimeoutError:
            exchange = self._record(label, None, "no greeting (timed out)", started)
            raise SessionSetupFailed(
                f"no SMTP greeting within {self._limit_text(self.timeouts.banner)}: a tarpit, "
                "an overloaded server, or not an SMTP service",
                Verdict.INCONCLUSIVE,
                exchange,
            ) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            exchange = self._record(label, None, f"connection failed: {exc}", started)
            raise SessionSetupFailed(
                f"the connection closed before a greeting: {exc}", Verdict.INCONCLUSIVE, exchange
            ) from None
        self._smtp = smtp
        self.state.greeting_code = response.code
        self._record(label, response.code, response.message, started)
        self._note_speed("the greeting", started)
        if first:
            self._note_banner(response.code, response.message, started)
            if self.implicit_tls:
                self.diagnostics.tls.implicit = True
                self.diagnostics.tls.offered = True
                self._note_tls()
        await self._hello(first)
        if self.implicit_tls:
            return
        offered = any(e.upper().startswith("STARTTLS") for e in self.state.extensions)
        if first:
            self.diagnostics.tls.offered = offered
            self.diagnostics.auth_before_tls = auth_mechanisms(self.state.extensions)
        if self.tls_mode == "off" or self._skip_starttls:
            return
        if not offered:
            if self.tls_mode == "require":
                raise SessionSetupFailed(
                    "--tls require: the server does not offer STARTTLS", Verdict.INCONCLUSIVE
                )
            return
        await self._starttls(first)

    async def _connect_socket(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        started = time.perf_counter()
        try:
            timeout = self._limit(self.timeouts.connect, "(connect)")
            await asyncio.wait_for(loop.sock_connect(sock, (self.address, self.port)), timeout)
        except TimeoutError:
            sock.close()
            exchange = self._record("(connect)", None, "timed out", started)
            raise SessionSetupFailed(
                f"no TCP answer from {self.address} port {self.port} within "
                f"{self._limit_text(self.timeouts.connect)} (filtered, or the host is down)",
                Verdict.UNREACHABLE,
                exchange,
            ) from None
        except BudgetExhausted:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            reason = exc.strerror or str(exc)
            exchange = self._record("(connect)", None, reason, started)
            raise SessionSetupFailed(
                f"cannot connect to {self.address} port {self.port}: {reason}",
                Verdict.UNREACHABLE,
                exchange,
            ) from None
        self.source_ip = str(sock.getsockname()[0])
        self._record("(connect)", None, f"connected from {self.source_ip}", started)
        return sock

    async def _hello(self, first: bool) -> None:
        ehlo = await self.command(f"EHLO {self.helo_name}", session_level=True)
        if ehlo.code == 250:
            self.state.esmtp = True
            self.state.ehlo_reply = ehlo.reply
            name, self.state.extensions = parse_ehlo(ehlo.reply)
            self._teach_aiosmtplib(ehlo)
        else:
            helo = await self.command(f"HELO {self.helo_name}", session_level=True)
            if helo.code != 250:
                raise SessionSetupFailed(
                    f"the server refused both EHLO ({ehlo.line}) and HELO ({helo.line})",
                    Verdict.INCONCLUSIVE,
                    helo,
                )
            name, self.state.extensions = parse_ehlo(helo.reply)
        if first:
            self.diagnostics.esmtp = self.state.esmtp
            self.diagnostics.ehlo_name = name
            self.diagnostics.extensions = list(self.state.extensions)
            self.diagnostics.size_limit = size_limit(self.state.extensions)

    def _teach_aiosmtplib(self, ehlo: SmtpExchange) -> None:
        # We send EHLO ourselves (to record it verbatim); aiosmtplib's starttls() needs to know
        # the extensions, so hand it the same reply.
        assert self._smtp is not None
        self._smtp.last_ehlo_response = aiosmtplib.SMTPResponse(250, ehlo.reply)

    async def _starttls(self, first: bool) -> None:
        assert self._smtp is not None
        started = time.perf_counter()
        try:
            response = await self._smtp.starttls(
                server_hostname=self.server_hostname,
                timeout=self._limit(self.timeouts.command, "STARTTLS"),
            )
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            code = getattr(exc, "code", None)
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            exchange = self._record("STARTTLS", code, reason, started)
            self.state.errors += 1
            if first:
                self.diagnostics.tls.error = reason
            if self.tls_mode == "require":
                raise SessionSetupFailed(
                    f"--tls require: STARTTLS failed: {reason}", Verdict.INCONCLUSIVE, exchange
                ) from None
            # auto: test in clear on a fresh connection rather than give up
            self._skip_starttls = True
            await self.open()
            return
        self._record("STARTTLS", response.code, response.message, started)
        self.state.tls = True
        if first:
            self._note_tls()
        await self._hello(first=False)
        if first:
            self.diagnostics.auth_after_tls = auth_mechanisms(self.state.extensions)

    def _note_banner(self, code: int, message: str, started: float) -> None:
        self.diagnostics.banner = f"{code} {message}"
        self.diagnostics.banner_ms = (time.perf_counter() - started) * 1000
        self.diagnostics.banner_name = first_hostname(message)

    def _note_tls(self) -> None:
        assert self._smtp is not None and self._smtp.transport is not None
        ssl_object = self._smtp.transport.get_extra_info("ssl_object")
        tls = self.diagnostics.tls
        tls.negotiated = ssl_object is not None
        if ssl_object is None:
            return
        tls.protocol = ssl_object.version() or ""
        cipher = ssl_object.cipher()
        tls.cipher = cipher[0] if cipher else ""
        try:
            tls.certificate = certificate_info(ssl_object.getpeercert(binary_form=True))
        except Exception as exc:  # a certificate we cannot parse is a finding, not a crash
            tls.error = f"certificate could not be decoded: {exc}"

    # -- commands ----------------------------------------------------------------------------

    async def command(self, line: str, session_level: bool = False) -> SmtpExchange:
        """Sends one command line; returns the exchange. Raises SessionDropped / SessionTimeout."""
        if self._smtp is None or not self._smtp.is_connected:
            raise SessionDropped(
                "the connection is closed", SmtpExchange(line, None, "not connected", 0.0)
            )
        timeout = self._limit(self.timeouts.command, line)
        started = time.perf_counter()
        try:
            response = await self._smtp.execute_command(line.encode("utf-8"), timeout=timeout)
        except aiosmtplib.SMTPTimeoutError:
            self._note_speed(f"the reply to {line.split()[0]}", started)
            exchange = self._exchange(line, None, f"no reply within {timeout:g}s", started)
            if session_level:
                self.log.append(exchange)
            self.close()
            if timeout < self.timeouts.command and self.remaining() <= 0.001:
                # the wait was cut short by the budget, not the server's silence
                raise BudgetExhausted(
                    f"{self._budget_text()} ran out waiting for the reply to {line.split()[0]}",
                    exchange,
                ) from None
            raise SessionTimeout(
                f"no reply to {line.split()[0]} within {timeout:g}s", exchange
            ) from None
        except aiosmtplib.SMTPServerDisconnected as exc:
            exchange = self._exchange(line, None, f"connection closed by server ({exc})", started)
            if session_level:
                self.log.append(exchange)
            self.close()
            raise SessionDropped("the server closed the connection", exchange) from None
        except aiosmtplib.SMTPException as exc:
            # "Response too long" (a reply line over 8 KB or a reply over 32 KB without end), a
            # malformed status line: what the server did is the finding, not a crash
            what = getattr(exc, "message", "") or str(exc) or type(exc).__name__
            exchange = self._exchange(line, None, f"unusable reply: {what}", started)
            if session_level:
                self.log.append(exchange)
            self.close()
            raise SessionGarbled(
                f"the server's reply to {line.split()[0]} broke SMTP ({what})", exchange
            ) from None
        exchange = self._exchange(line, response.code, response.message, started)
        self._note_speed(f"the reply to {line.split()[0]}", started)
        if session_level:
            self.log.append(exchange)
        if response.code >= 400:
            self.state.errors += 1
        if response.code == 421:  # "closing transmission channel": aiosmtplib has hung up
            self.close()
            raise SessionDropped(f"the server closed the session: {exchange.line}", exchange)
        return exchange

    async def data_and_abort(self) -> SmtpExchange:
        """DATA; on 354 drop the connection without sending a message (nothing gets queued)."""
        exchange = await self.command("DATA")
        if exchange.code == 354:
            # No body, no final dot: the server must discard the transaction (RFC 5321 4.1.1.4).
            self.abort()
        return exchange

    async def quit(self) -> None:
        if not self.connected:
            return
        try:
            await self.command("QUIT", session_level=True)
        except SessionError:
            pass
        self.close()

    def abort(self) -> None:
        if self._smtp is not None and self._smtp.transport is not None:
            self._smtp.transport.abort()
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    # -- recording ---------------------------------------------------------------------------

    def _exchange(self, command: str, code: int | None, reply: str, started: float) -> SmtpExchange:
        return SmtpExchange(command, code, reply, (time.perf_counter() - started) * 1000)

    def _record(self, command: str, code: int | None, reply: str, started: float) -> SmtpExchange:
        exchange = self._exchange(command, code, reply, started)
        self.log.append(exchange)
        return exchange

    def _limit_text(self, timeout: float) -> str:
        return f"{min(timeout, max(self.remaining(), 0)):g}s"


def diagnostic_tls_context() -> ssl.SSLContext:
    """A client context that inspects certificates rather than trusting them: a self-signed or
    expired certificate is a finding to report, not a reason to stop testing. No CA store is
    loaded (nothing is verified), which also keeps it cheap: one per target, not per session."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
