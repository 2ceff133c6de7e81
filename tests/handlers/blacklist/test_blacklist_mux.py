"""The multiplexing UDP client: matching, retries, timeouts, TCP fallback, concurrency bound."""

from __future__ import annotations

import asyncio

import dns.message

from handlers.blacklist.mux import (
    ANSWER,
    NXDOMAIN,
    QTYPE_A,
    QTYPE_TXT,
    SERVFAIL,
    TIMEOUT,
    DnsMultiplexer,
    question_bytes,
)
from handlers.blacklist.targets import name_labels_wire


def q(name: str, qtype: int = QTYPE_A) -> bytes:
    return question_bytes(name_labels_wire(name) + b"\x00", qtype)


async def test_nxdomain_and_answer(dns_server):
    async with DnsMultiplexer([dns_server.address], timeout=0.5) as mux:
        status, _ = await mux.query(q("1.0.0.127.zen.dnsbl.test"))
        assert status == NXDOMAIN
        status, data = await mux.query(q("2.0.0.127.zen.dnsbl.test"))
        assert status == ANSWER
        addresses = {r.address for rrset in dns.message.from_wire(data).answer for r in rrset}
        assert addresses == {"127.0.0.2", "127.0.0.4", "127.0.0.10"}


async def test_silent_server_times_out_after_retries(dns_server):
    name = "9.9.9.9.slow.dnsbl.test"
    async with DnsMultiplexer([dns_server.address], timeout=0.1, retries=2) as mux:
        status, data = await mux.query(q(name))
    assert (status, data) == (TIMEOUT, None)
    assert dns_server.queries[(name, "A", "udp")] == 3
    assert mux.stats.timeouts == 1 and mux.stats.retries == 2


async def test_servfail_is_retried_then_reported(dns_server):
    name = "9.9.9.9.broken.dnsbl.test"
    async with DnsMultiplexer([dns_server.address], timeout=0.5, retries=1) as mux:
        status, _ = await mux.query(q(name))
    assert status == SERVFAIL
    assert dns_server.queries[(name, "A", "udp")] == 2


async def test_truncated_answer_is_retried_over_tcp(dns_server):
    name = "99.2.0.192.bl.dnsbl.test"
    async with DnsMultiplexer([dns_server.address], timeout=0.5) as mux:
        status, data = await mux.query(q(name, QTYPE_TXT))
    assert status == ANSWER and mux.stats.tcp == 1
    assert b"listed by Test BL" in data
    assert dns_server.queries[(name, "TXT", "tcp")] >= 1


async def test_concurrency_is_bounded(dns_server):
    async with DnsMultiplexer([dns_server.address], timeout=0.2, retries=0, concurrency=5) as mux:
        results: list[str] = []
        for i in range(30):
            mux.submit(q(f"{i}.1.1.10.slow.dnsbl.test"), lambda _c, s, _d: results.append(s))
        assert mux.in_flight == 5 and mux.queued == 25
        async with asyncio.timeout(5):
            while len(results) < 30:
                await asyncio.sleep(0.05)
                assert mux.in_flight <= 5
    assert results == [TIMEOUT] * 30


class _Spoofer(asyncio.DatagramProtocol):
    """Answers every query three times: wrong id, right id but wrong question, then correctly."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        query = dns.message.from_wire(data)
        good = dns.message.make_response(query)
        good.set_rcode(3)
        wire = good.to_wire()
        wrong_id = bytes([wire[0] ^ 0xFF, wire[1]]) + wire[2:]
        other = dns.message.make_response(dns.message.make_query("evil.example", "A"))
        other.id = query.id
        self.transport.sendto(wrong_id, addr)
        self.transport.sendto(other.to_wire(), addr)
        self.transport.sendto(wire, addr)


async def test_answers_with_wrong_id_or_question_are_ignored():
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Spoofer, local_addr=("127.0.0.1", 0))
    try:
        server = transport.get_extra_info("sockname")[:2]
        async with DnsMultiplexer([server], timeout=0.5) as mux:
            status, _ = await mux.query(q("1.2.0.192.zen.example"))
            await asyncio.sleep(0.05)
        assert status == NXDOMAIN
        assert mux.stats.ignored >= 2
    finally:
        transport.close()


async def test_query_ids_are_random_and_distinct(dns_server):
    async with DnsMultiplexer([dns_server.address], timeout=0.5, sockets_per_server=1) as mux:
        channel = mux._channels[0][0]
        ids = set()
        for i in range(50):
            mux.submit(q(f"{i}.9.9.10.slow.dnsbl.test"), lambda *_: None)
        ids = set(channel.pending)
        assert len(ids) == 50 and ids != set(range(min(ids), min(ids) + 50))
