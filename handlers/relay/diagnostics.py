"""What the SMTP session reveals besides relaying: EHLO, TLS certificate, reverse DNS, vantage.

DNS goes through dnspython's asyncio resolver with configurable nameservers and an explicit
lifetime, so tests can point it at a local server (or inject any object with the `DnsLookup` shape).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import dns.reversename

from handlers.numbers import is_ascii_digits, parse_port
from handlers.relay.model import CertificateInfo, Diagnostics, ReverseDns

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$")
# AUTH mechanisms that send the password itself (base64 is not encryption)
PLAINTEXT_AUTH = ("PLAIN", "LOGIN")


class DnsLookup(Protocol):
    """The DNS questions the relay engine asks; raise `LookupError` with a reason on failure."""

    async def addresses(self, name: str) -> list[str]: ...

    async def ptr(self, address: str) -> list[str]: ...

    async def mx(self, domain: str) -> list[tuple[int, str]]: ...


class DnsLookupError(LookupError):
    """A name that does not resolve; the message says which name and why."""


class DnspythonLookup:
    """dnspython's asyncio resolver; `nameservers` are "IP" or "IP:PORT" ("[v6]:PORT")."""

    def __init__(self, nameservers: list[str] | None = None, timeout: float = 3.0) -> None:
        self.nameservers = list(nameservers or [])
        self.timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self.nameservers:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [_nameserver(text) for text in self.nameservers]
            else:
                resolver = dns.asyncresolver.Resolver()
            resolver.lifetime = self.timeout
            resolver.timeout = self.timeout
            self._resolver = resolver
        return self._resolver

    async def addresses(self, name: str) -> list[str]:
        # Without configured nameservers, host names resolve the way the mail server's admin
        # sees them (getaddrinfo honours /etc/hosts, so "localhost" works).
        if not self.nameservers:
            return await _getaddrinfo(name, self.timeout)
        found: list[str] = []
        errors: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._get().resolve(name, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN) as exc:
                errors.append(_dns_reason(exc))
                continue
            except dns.exception.DNSException as exc:
                raise DnsLookupError(f"{name}: {_dns_reason(exc)}") from None
            found.extend(r.to_text() for r in answer)
        if not found:
            raise DnsLookupError(f"{name}: {errors[0] if errors else 'no address'}")
        return found

    async def ptr(self, address: str) -> list[str]:
        try:
            answer = await self._get().resolve(dns.reversename.from_address(address), "PTR")
        except dns.exception.DNSException as exc:
            raise DnsLookupError(f"PTR {address}: {_dns_reason(exc)}") from None
        return [r.to_text().rstrip(".").lower() for r in answer]

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        try:
            answer = await self._get().resolve(domain, "MX")
        except dns.exception.DNSException as exc:
            raise DnsLookupError(f"MX {domain}: {_dns_reason(exc)}") from None
        return sorted((r.preference, r.exchange.to_text().rstrip(".").lower()) for r in answer)


def _nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = parse_port(rest[1:], f"nameserver {text!r}: the port") if rest else 53
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = parse_port(port_text, f"nameserver {text!r}: the port")
    return dns.nameserver.Do53Nameserver(host, port)


def _dns_reason(exc: BaseException) -> str:
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return "no such name (NXDOMAIN)"
    if isinstance(exc, dns.resolver.NoAnswer):
        return "no record of that type"
    if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
        return "DNS timeout"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "no nameserver answered (SERVFAIL or refused)"
    return str(exc) or type(exc).__name__


async def _getaddrinfo(name: str, lifetime: float) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), lifetime
        )
    except TimeoutError:
        raise DnsLookupError(f"{name}: DNS timeout") from None
    except OSError as exc:
        raise DnsLookupError(f"{name}: {exc.strerror or exc}") from None
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).partition("%")[0]
        if address not in seen:
            seen.append(address)
    return seen


async def reverse_dns(lookup: DnsLookup, address: str) -> ReverseDns:
    """PTR names of `address` and whether one of them resolves back to it (FCrDNS)."""
    result = ReverseDns()
    try:
        result.ptr = await lookup.ptr(address)
    except LookupError as exc:
        result.error = str(exc)
        result.fcrdns = False if "NXDOMAIN" in str(exc) or "no record" in str(exc) else None
        return result
    if not result.ptr:
        result.fcrdns = False
        return result
    wanted = ipaddress.ip_address(address)
    errors: list[str] = []
    for name in result.ptr:
        try:
            forward = await lookup.addresses(name)
        except LookupError as exc:
            errors.append(str(exc))
            continue
        if any(_same_address(a, wanted) for a in forward):
            result.fcrdns = True
            return result
    result.fcrdns = False
    if errors:
        result.error = "; ".join(errors)
    return result


def _same_address(text: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(text) == wanted
    except ValueError:
        return False


# -- EHLO and banner -------------------------------------------------------------------------


def first_hostname(text: str) -> str:
    """The host name a banner or EHLO reply announces ("mx.example.com ESMTP Postfix" → name)."""
    words = text.split()
    if not words:
        return ""
    word = words[0].rstrip(",")
    return word.lower() if _HOSTNAME.match(word) and not is_ascii_digits(word) else ""


def parse_ehlo(reply: str) -> tuple[str, list[str]]:
    """EHLO reply text (lines after the code) → (announced name, extension lines)."""
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    if not lines:
        return "", []
    return first_hostname(lines[0]), lines[1:]


def extension_keywords(extensions: list[str]) -> dict[str, str]:
    """{"SIZE": "10240000", "AUTH": "PLAIN LOGIN", "STARTTLS": ""} — keywords upper-cased."""
    found: dict[str, str] = {}
    for line in extensions:
        keyword, _, params = line.partition(" ")
        # some servers also announce the pre-RFC "AUTH=PLAIN LOGIN" form
        if keyword.upper().startswith("AUTH="):
            keyword, params = "AUTH", line[5:]
        key = keyword.upper()
        found[key] = (found.get(key, "") + " " + params).strip() if key in found else params
    return found


def auth_mechanisms(extensions: list[str]) -> list[str]:
    mechanisms: list[str] = []
    for mechanism in extension_keywords(extensions).get("AUTH", "").split():
        if mechanism.upper() not in mechanisms:
            mechanisms.append(mechanism.upper())
    return mechanisms


def size_limit(extensions: list[str]) -> int | None:
    value = extension_keywords(extensions).get("SIZE")
    if value is None:
        return None
    value = value.strip()
    # "SIZE" without a number: no fixed limit; the server chose the text, so ASCII digits only
    return int(value) if is_ascii_digits(value) and len(value) <= 30 else 0


def user_lookup_enabled(code: int | None, reply: str) -> bool | None:
    """Whether a VRFY/EXPN answer gives away mailbox information. None: could not tell."""
    if code is None:
        return None
    if code in (250, 251):
        return True
    if code == 252:
        # "252 Cannot VRFY user, but will accept message" is the polite way of saying no
        return "cannot" not in reply.lower()
    if code in (550, 551, 553):  # it looked the user up and said who does not exist
        return True
    if code in (500, 502, 504, 530):
        return False
    return None


# -- TLS certificate -------------------------------------------------------------------------


def certificate_info(der: bytes | None, now: datetime | None = None) -> CertificateInfo | None:
    """Subject, issuer, expiry and self-signedness from a DER certificate (no validation done)."""
    if not der:
        return None
    now = now or datetime.now(UTC)
    try:
        from cryptography import x509  # present wherever trustme/most TLS stacks are
    except ImportError:  # pragma: no cover - fallback when cryptography is absent
        return _certificate_info_stdlib(der, now)
    cert = x509.load_der_x509_certificate(der)
    not_after = cert.not_valid_after_utc
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    self_signed = cert.issuer == cert.subject
    if self_signed:
        try:
            cert.verify_directly_issued_by(cert)
        except Exception:
            self_signed = False  # same name, but signed by another key: a real (if odd) CA
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=not_after.isoformat(timespec="seconds"),
        days_left=(not_after - now).days,
        expired=not_after < now,
        self_signed=self_signed,
        names=names,
    )


def _certificate_info_stdlib(der: bytes, now: datetime) -> CertificateInfo | None:
    # CPython's test helper is the only stdlib decoder for a certificate that was not validated.
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return CertificateInfo(subject="(install 'cryptography' to decode the certificate)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cert.pem"
        path.write_text(ssl.DER_cert_to_PEM_cert(der))
        decoded = decode(str(path))

    def name(rdns: tuple) -> str:
        return ",".join(f"{k}={v}" for rdn in rdns for k, v in rdn)

    not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), UTC)
    subject, issuer = name(decoded.get("subject", ())), name(decoded.get("issuer", ()))
    return CertificateInfo(
        subject=subject,
        issuer=issuer,
        not_after=not_after.isoformat(timespec="seconds"),
        days_left=(not_after - now).days,
        expired=not_after < now,
        self_signed=subject == issuer,
        names=[v for k, v in decoded.get("subjectAltName", ()) if k == "DNS"],
    )


# -- vantage ---------------------------------------------------------------------------------


def vantage_warning(source_ip: str, target_address: str) -> str | None:
    """Why a result seen from `source_ip` may differ from what a stranger on the internet sees."""
    try:
        source = ipaddress.ip_address(source_ip)
        target = ipaddress.ip_address(target_address)
    except ValueError:
        return None
    if source.is_loopback:
        reason = f"the probe came from loopback ({source})"
    elif _same_network(source, target):
        reason = f"the probe came from {source}, in the same network as the server"
    elif source.is_private or source.is_link_local:
        reason = f"the probe came from a private address ({source})"
    else:
        return None
    return (
        f"{reason}: the server may trust this address (Postfix mynetworks, Exim relay_from_hosts) "
        "and relay for it while refusing strangers, so an 'open' result here may not be what the "
        "internet sees. Run relaycheck from outside the network to confirm."
    )


def _same_network(
    source: ipaddress.IPv4Address | ipaddress.IPv6Address,
    target: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> bool:
    if source.version != target.version:
        return False
    prefix = 24 if source.version == 4 else 64
    return target in ipaddress.ip_network(f"{source}/{prefix}", strict=False)


def diagnostic_warnings(diagnostics: Diagnostics) -> list[str]:
    """Plain-language warnings from the diagnostics, each with why it matters."""
    warnings: list[str] = []
    tls = diagnostics.tls
    clear_plaintext = [m for m in diagnostics.auth_before_tls if m in PLAINTEXT_AUTH]
    if clear_plaintext and not tls.implicit:
        warnings.append(
            f"AUTH {' '.join(clear_plaintext)} is offered before STARTTLS: passwords can cross the "
            "network in clear text (Postfix: smtpd_tls_auth_only = yes)."
        )
    if diagnostics.esmtp and not tls.offered and not tls.implicit:
        warnings.append(
            "STARTTLS is not offered: mail to and from this server travels unencrypted."
        )
    if tls.offered and not tls.negotiated and tls.error:
        warnings.append(f"STARTTLS is offered but the TLS handshake failed: {tls.error}.")
    cert = tls.certificate
    if cert is not None:
        if cert.expired:
            warnings.append(f"The TLS certificate expired on {cert.not_after}.")
        elif cert.days_left is not None and cert.days_left < 14:
            warnings.append(
                f"The TLS certificate expires in {cert.days_left} days ({cert.not_after})."
            )
        if cert.self_signed:
            warnings.append(
                f"The TLS certificate is self-signed ({cert.subject}); senders that verify "
                "certificates (MTA-STS, DANE without a matching TLSA) will refuse it."
            )
    if diagnostics.vrfy_enabled:
        warnings.append(
            f"VRFY answers mailbox questions ({diagnostics.vrfy}): spammers can harvest valid "
            "addresses (Postfix: disable_vrfy_command = yes)."
        )
    if diagnostics.expn_enabled:
        warnings.append(f"EXPN expands mailing lists ({diagnostics.expn}): disable it.")
    rdns = diagnostics.reverse_dns
    if rdns.fcrdns is False and not rdns.ptr:
        warnings.append(
            "The server's address has no PTR record: many receivers reject or spam-score mail "
            "from addresses without reverse DNS. Ask the address owner to set one."
        )
    elif rdns.fcrdns is False:
        warnings.append(
            f"PTR {', '.join(rdns.ptr)} does not resolve back to the server's address "
            "(forward-confirmed reverse DNS fails): receivers treat that as a spam sign."
        )
    if rdns.ptr and diagnostics.banner_matches_ptr is False and diagnostics.banner_name:
        warnings.append(
            f"The banner announces {diagnostics.banner_name} but the PTR is "
            f"{', '.join(rdns.ptr)}: make the two agree (Postfix: myhostname)."
        )
    return warnings
