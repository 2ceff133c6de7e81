"""A fast authoritative DNS server for the blocklist benchmark (run in its own process).

The test fixture (tests/fixtures/dns_server.py) parses every query with dnspython, which is far
too slow to measure a client doing tens of thousands of queries per second. This server answers
the same zones from precomputed bytes: the few listed names (and the RFC 5782 test points) from a
table built once with the fixture's dnspython responder; every other name in a zone gets an
NXDOMAIN with the zone's SOA assembled from the query's own question bytes. Several processes
can share the port with SO_REUSEPORT.

    python bench/blacklist/fastdns.py --zones 10 --port 0 --procs 1   # prints the port
"""

from __future__ import annotations

import argparse
import ipaddress
import multiprocessing
import os
import signal
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures.dns_server import DnsTestServer

SOA_NEGATIVE_TTL = 300
BENCH_DOMAIN = "bench.test"


def zone_names(count: int) -> list[str]:
    return [f"bl{i:02d}.{BENCH_DOMAIN}" for i in range(count)]


def listed_addresses(network: str, every: int = 64) -> list[str]:
    """Every `every`-th address of the range is listed, on every zone."""
    net = ipaddress.ip_network(network)
    return [str(net[i]) for i in range(0, net.num_addresses, every)]


def _wire(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def _soa_record(zone: str) -> bytes:
    zone_wire = _wire(zone)
    rdata = (
        _wire(f"ns.{zone}")
        + _wire(f"hostmaster.{zone}")
        + struct.pack("!IIIII", 1, 3600, 600, 86400, SOA_NEGATIVE_TTL)
    )
    return zone_wire + struct.pack("!HHIH", 6, 1, SOA_NEGATIVE_TTL, len(rdata)) + rdata


def build_tables(zones: list[str], networks: list[str]) -> tuple[dict[bytes, bytes], list]:
    """(question → response without its id, [(zone A/TXT question tail, NXDOMAIN tail), …])."""
    fixture = DnsTestServer()
    for zone in zones:
        fixture.add_zone(zone, negative_ttl=SOA_NEGATIVE_TTL)
        fixture.add_records(f"2.0.0.127.{zone}", "A", "127.0.0.2")
        fixture.add_record(f"2.0.0.127.{zone}", "TXT", "RFC 5782 test point")
        for network in networks:
            for address in listed_addresses(network):
                rev = ".".join(reversed(address.split(".")))
                fixture.add_records(f"{rev}.{zone}", "A", "127.0.0.2", "127.0.0.4")
                fixture.add_record(f"{rev}.{zone}", "TXT", f"{address} listed for the benchmark")
    table: dict[bytes, bytes] = {}
    for (name, rdtype), _ in list(fixture._records.items()):
        question = _wire(name.to_text()) + struct.pack("!HH", rdtype, 1)
        query = b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + question
        response = fixture.respond(query)
        assert response is not None
        table[question] = response[2:]
    nx = []
    for zone in zones:
        soa = _soa_record(zone)
        for qtype in (1, 16):
            tail = _wire(zone) + struct.pack("!HH", qtype, 1)
            nx.append((tail, soa))
    return table, nx


def serve(sock: socket.socket, table: dict[bytes, bytes], nx: list) -> None:
    recvfrom = sock.recvfrom
    sendto = sock.sendto
    lookup = table.get
    # flags: QR AA RD RA, rcode NXDOMAIN; one question, no answer, one authority record
    nx_head = b"\x85\x83\x00\x01\x00\x00\x00\x01\x00\x00"
    refused_head = b"\x81\x05\x00\x01\x00\x00\x00\x00\x00\x00"
    while True:
        data, peer = recvfrom(1024)
        if len(data) < 17:
            continue
        # the question ends after the name's labels and 4 bytes of type and class; anything
        # after that (an EDNS OPT record from c-ares) is ignored
        pos = 12
        length = data[pos]
        while length:
            pos += length + 1
            length = data[pos]
        question = data[12 : pos + 5]
        found = lookup(question)
        if found is not None:
            sendto(data[:2] + found, peer)
            continue
        for tail, soa in nx:
            if question.endswith(tail):
                sendto(data[:2] + nx_head + question + soa, peer)
                break
        else:
            sendto(data[:2] + refused_head + question, peer)


def _worker(port: int, table: dict[bytes, bytes], nx: list, probe: socket.socket) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # the fork inherited the parent's port-reserving socket; a member of the SO_REUSEPORT group
    # that nobody reads would swallow a share of the queries
    probe.close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", port))
    serve(sock, table, nx)


def start_servers(
    zones: list[str], networks: list[str], procs: int = 1
) -> tuple[int, list[multiprocessing.Process]]:
    """Starts `procs` server processes on one ephemeral port; returns (port, processes)."""
    table, nx = build_tables(zones, networks)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_worker, args=(port, table, nx, probe), daemon=True)
        for _ in range(procs)
    ]
    for worker in workers:
        worker.start()
    # the probe socket held the port until the workers bound it; it never reads, so close it
    probe.close()
    return port, workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--network", action="append", default=None)
    parser.add_argument("--procs", type=int, default=1)
    args = parser.parse_args()
    port, workers = start_servers(
        zone_names(args.zones), args.network or ["10.0.0.0/20"], args.procs
    )
    print(port, flush=True)
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:
        os._exit(0)


if __name__ == "__main__":
    main()
