"""A bulk DNS client: many queries in flight over a few UDP sockets, for DNSBL-sized workloads.

A full resolver call per query (a socket, a task and a parsed message each) is what makes stock
resolvers slow for 4,096 addresses × 60 lists. Here every nameserver gets a few connected UDP
sockets; queries are built from pre-encoded wire pieces, answers are matched by a random 16-bit id
and the exact question bytes, and the common "not listed" answer (NXDOMAIN) is recognised from its
header alone. Anything that has to be understood (an answer with records) is handed to the caller
as raw wire for dnspython to decode. Timeouts are swept from one deque (a constant per-query
timeout keeps it in deadline order) instead of one timer per query; truncated answers are retried
over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# What a callback receives as `status`. ANSWER carries the raw response (NOERROR) to decode.
ANSWER = "answer"
NXDOMAIN = "nxdomain"
TIMEOUT = "timeout"
SERVFAIL = "servfail"
REFUSED = "refused"
BAD_ANSWER = "bad-answer"

QTYPE_A = 1
QTYPE_TXT = 16
QTYPE_AAAA = 28

# flags: RD set (a recursive resolver is the normal nameserver); QDCOUNT 1; no other sections
_HEADER_TAIL = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
_RCODE_STATUS = {0: ANSWER, 2: SERVFAIL, 3: NXDOMAIN, 5: REFUSED}

# callback(context, status, raw response or None)
Callback = Callable[[Any, str, bytes | None], None]


def question_bytes(name_wire: bytes, qtype: int) -> bytes:
    """The question section for an absolute name already in wire form (ending in the root label)."""
    return name_wire + struct.pack("!HH", qtype, 1)


@dataclass
class MuxStats:
    sent: int = 0
    answered: int = 0
    retries: int = 0
    timeouts: int = 0
    tcp: int = 0
    ignored: int = 0  # datagrams that matched no query (late, spoofed, or mangled)


class _Query:
    __slots__ = ("attempts", "callback", "channel", "context", "done", "qid", "question")

    def __init__(self, question: bytes, callback: Callback, context: Any) -> None:
        self.question = question
        self.callback = callback
        self.context = context
        self.attempts = 0
        self.qid = -1
        self.channel: _Channel | None = None
        self.done = False


class _Channel(asyncio.DatagramProtocol):
    """One connected UDP socket to one nameserver, with the queries waiting on it by id."""

    def __init__(self, mux: DnsMultiplexer, server: tuple[str, int]) -> None:
        self.mux = mux
        self.server = server
        self.pending: dict[int, _Query] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None

    def send(self, packet: bytes) -> None:
        # Straight to the (non-blocking, connected) socket: the transport's sendto adds checks
        # and buffering that cost more than the syscall. When the kernel buffer is full, the
        # transport queues the packet and sends it when the socket is writable again.
        if self.sock is not None and not self.transport.get_write_buffer_size():  # type: ignore[union-attr]
            try:
                self.sock.send(packet)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                log.debug("UDP send to %s:%s failed: %s", self.server[0], self.server[1], exc)
                return  # the query times out and is retried
        self.transport.sendto(packet)  # type: ignore[union-attr]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.handle(data)
        # The transport hands over one datagram per event-loop pass; under load more are already
        # queued, and reading them here saves a loop iteration (a select call) for each.
        sock = self.sock
        if sock is None:
            return
        for _ in range(64):
            try:
                data = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            self.handle(data)

    def handle(self, data: bytes) -> None:
        # The socket is connected, so the kernel already dropped datagrams from other sources.
        if len(data) < 12:
            self.mux.stats.ignored += 1
            return
        query = self.pending.get((data[0] << 8) | data[1])
        if query is None:
            self.mux.stats.ignored += 1
            return
        question = query.question
        end = 12 + len(question)
        echoed = data[12:end]
        # servers may echo the name with 0x20 case changes; lengths bytes are never letters
        if (echoed != question and echoed.lower() != question) or not data[2] & 0x80:
            self.mux.stats.ignored += 1
            return
        if data[4] != 0 or data[5] != 1:
            self.mux.stats.ignored += 1
            return
        del self.pending[query.qid]
        self.mux._answered(query, data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the affected queries simply time out and retry.
        log.debug("UDP error from %s:%s: %s", self.server[0], self.server[1], exc)


class DnsMultiplexer:
    """Sends raw DNS questions to the nameservers with bounded concurrency; calls back per answer.

    Use as an async context manager. `submit` never blocks: beyond `concurrency` queries in
    flight, new ones wait in a queue and go out as answers come back.
    """

    def __init__(
        self,
        nameservers: list[tuple[str, int]],
        timeout: float = 2.0,
        retries: int = 2,
        concurrency: int = 200,
        sockets_per_server: int = 2,
    ) -> None:
        if not nameservers:
            raise ValueError("at least one nameserver is needed")
        self.nameservers = list(nameservers)
        self.timeout = timeout
        self.retries = retries
        self.concurrency = max(1, concurrency)
        self.sockets_per_server = max(1, sockets_per_server)
        self.stats = MuxStats()
        self._channels: list[list[_Channel]] = []
        self._waiting: deque[_Query] = deque()
        self._timers: deque[tuple[float, _Query, int]] = deque()
        self._in_flight = 0
        self._rr = 0
        self._ids: list[int] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> DnsMultiplexer:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        for host, port in self.nameservers:
            group = []
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            for _ in range(self.sockets_per_server):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sock.setblocking(False)
                    # connected: the kernel drops datagrams from anyone but this nameserver
                    sock.connect((host, port))
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                    _, protocol = await loop.create_datagram_endpoint(
                        lambda h=host, p=port: _Channel(self, (h, p)), sock=sock
                    )
                except OSError:
                    sock.close()
                    raise
                protocol.sock = sock
                group.append(protocol)
            self._channels.append(group)
        self._sweeper = loop.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for task in list(self._tcp_tasks):
            task.cancel()
        for group in self._channels:
            for channel in group:
                if channel.transport is not None:
                    channel.transport.close()
        self._channels = []

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def submit(self, question: bytes, callback: Callback, context: Any = None) -> None:
        """Queues one question (see `question_bytes`); `callback(context, status, data)` follows."""
        query = _Query(question, callback, context)
        if self._in_flight < self.concurrency:
            self._in_flight += 1
            self._send(query)
        else:
            self._waiting.append(query)

    async def query(self, question: bytes) -> tuple[str, bytes | None]:
        """One question, awaited: (status, raw response)."""
        future: asyncio.Future[tuple[str, bytes | None]] = (
            asyncio.get_running_loop().create_future()
        )

        def done(_: Any, status: str, data: bytes | None) -> None:
            if not future.done():
                future.set_result((status, data))

        self.submit(question, done)
        return await future

    # -- internals --------------------------------------------------------------------------

    def _next_id(self, channel: _Channel) -> int:
        ids = self._ids
        while True:
            if not ids:
                # os.urandom, not `random`: ids are part of what makes a forged answer hard to land
                ids.extend(array("H", os.urandom(8192)).tolist())
            qid = ids.pop()
            if qid not in channel.pending:
                return qid

    def _send(self, query: _Query) -> None:
        # first try on the first nameserver, each retry on the next one
        group = self._channels[query.attempts % len(self._channels)]
        self._rr += 1
        channel = group[self._rr % len(group)]
        qid = self._next_id(channel)
        query.qid = qid
        query.channel = channel
        channel.pending[qid] = query
        self.stats.sent += 1
        channel.send(qid.to_bytes(2, "big") + _HEADER_TAIL + query.question)
        self._timers.append((self._loop.time() + self.timeout, query, query.attempts))  # type: ignore[union-attr]

    def _answered(self, query: _Query, data: bytes) -> None:
        self.stats.answered += 1
        if data[2] & 0x02:  # TC: the answer did not fit in UDP
            query.done = True
            self.stats.tcp += 1
            task = self._loop.create_task(self._tcp(query))  # type: ignore[union-attr]
            self._tcp_tasks.add(task)
            task.add_done_callback(self._tcp_tasks.discard)
            return
        status = _RCODE_STATUS.get(data[3] & 0x0F, BAD_ANSWER)
        if status in (SERVFAIL, REFUSED) and query.attempts < self.retries:
            # a resolver's SERVFAIL is often transient, and another nameserver may answer
            self.stats.retries += 1
            query.attempts += 1
            self._send(query)
            return
        query.done = True
        self._complete(query, status, data)

    def _complete(self, query: _Query, status: str, data: bytes | None) -> None:
        try:
            query.callback(query.context, status, data)
        except Exception:  # a broken callback must not stall every other query
            log.exception("DNS answer callback failed")
        waiting = self._waiting
        if waiting:
            self._send(waiting.popleft())  # the slot passes straight to the next query
        else:
            self._in_flight -= 1

    async def _sweep(self) -> None:
        tick = min(0.05, self.timeout / 4)
        timers = self._timers
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            while timers:
                deadline, query, attempt = timers[0]
                if query.done or query.attempts != attempt:
                    timers.popleft()  # answered: drop it now, so the deque stays short
                    continue
                if deadline > now:
                    break
                timers.popleft()
                channel = query.channel
                if channel is not None:
                    channel.pending.pop(query.qid, None)
                if query.attempts < self.retries:
                    self.stats.retries += 1
                    query.attempts += 1
                    self._send(query)
                else:
                    query.done = True
                    self.stats.timeouts += 1
                    self._complete(query, TIMEOUT, None)

    async def _tcp(self, query: _Query) -> None:
        assert query.channel is not None
        host, port = query.channel.server
        qid = int.from_bytes(os.urandom(2), "big")
        wire = qid.to_bytes(2, "big") + _HEADER_TAIL + query.question
        status, data = TIMEOUT, None
        writer = None
        try:
            async with asyncio.timeout(self.timeout * (self.retries + 1)):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(size)
            end = 12 + len(query.question)
            if (
                len(data) < 12
                or int.from_bytes(data[:2], "big") != qid
                or data[12:end].lower() != query.question.lower()
            ):
                status, data = BAD_ANSWER, None
            else:
                status = _RCODE_STATUS.get(data[3] & 0x0F, BAD_ANSWER)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            log.debug("TCP retry to %s:%s failed: %s", host, port, exc)
            status, data = TIMEOUT, None
        finally:
            if writer is not None:
                writer.close()
        self._complete(query, status, data)
