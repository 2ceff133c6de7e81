"""Blocklist lookup benchmark: relaywatch's engine vs pydnsbl vs a plain dnspython resolver loop.

4,096 addresses (10.0.0.0/20) × every IP list of the bench zones, against a local authoritative
server running in its own process(es) (bench/blacklist/fastdns.py), so the server is not what is
measured. Each client runs in a fresh subprocess so its peak RSS is its own. Every 64th address
is listed (two codes and a TXT reason) on every zone; the rest get NXDOMAIN with a SOA.

    .venv/bin/python bench/blacklist/run.py                 # the comparison table
    .venv/bin/python bench/blacklist/run.py --memory        # also /20 vs /16 peak RSS

pydnsbl resolves through aiodns/c-ares, which has no "nameserver:port" option of its own here;
the benchmark replaces the checker's internal resolver with an aiodns.DNSResolver pointed at the
server's address and UDP/TCP port (same timeout and tries), which is the only change made to it.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fastdns  # noqa: E402

CONCURRENCY = 200
TIMEOUT = 2.0
TRIES = 2


def peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so every client
    # would report at least the orchestrator's own peak (it holds the server's tables)
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the three clients (each runs in its own process) ---------------------------------------------


async def client_relaywatch(port: int, zones: list[str], network: str) -> dict:
    from handlers.blacklist import AnswerCache, EngineSettings, parse_entry, parse_target, run_check

    lists = [parse_entry({"zone": z, "kind": "ipv4"}, "bench") for z in zones]
    settings = EngineSettings(
        nameservers=[("127.0.0.1", port)],
        timeout=TIMEOUT,
        retries=TRIES - 1,
        concurrency=CONCURRENCY,
    )
    started = time.perf_counter()
    report = await run_check([parse_target(network, 8)], lists, settings, cache=AnswerCache())
    elapsed = time.perf_counter() - started
    summary = report.ranges[0]
    return {
        "elapsed": elapsed,
        "addresses": summary.checked,
        "listed_addresses": summary.listed,
        "failed_addresses": summary.failed,
        "queries_sent": report.stats.sent,
        "timeouts": report.stats.timeouts,
    }


async def client_pydnsbl(port: int, zones: list[str], network: str) -> dict:
    import aiodns
    from pydnsbl import DNSBLIpChecker
    from pydnsbl.providers import Provider

    loop = asyncio.get_running_loop()
    checker = DNSBLIpChecker(
        providers=[Provider(z) for z in zones],
        timeout=TIMEOUT,
        tries=TRIES,
        concurrency=CONCURRENCY,
        loop=loop,
    )
    # pydnsbl builds its own aiodns resolver from the system configuration; point it at the
    # benchmark server instead (c-ares takes the port separately from the address)
    checker._resolver = aiodns.DNSResolver(
        nameservers=["127.0.0.1"],
        loop=loop,
        timeout=TIMEOUT,
        tries=TRIES,
        udp_port=port,
        tcp_port=port,
    )
    addresses = [str(a) for a in ipaddress.ip_network(network)]
    started = time.perf_counter()
    results = await asyncio.gather(*(checker.check_async(a) for a in addresses))
    elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed,
        "addresses": len(results),
        "listed_addresses": sum(1 for r in results if r.blacklisted),
        "failed_addresses": sum(1 for r in results if r.failed_providers),
        "queries_sent": len(results) * len(zones),
        "timeouts": None,
    }


async def client_dnspython(port: int, zones: list[str], network: str) -> dict:
    import dns.asyncresolver
    import dns.nameserver
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
    resolver.timeout = TIMEOUT
    resolver.lifetime = TIMEOUT * TRIES
    resolver.cache = None
    net = ipaddress.ip_network(network)
    names = (
        ".".join(reversed(str(a).split("."))) + "." + zone + "." for a in net for zone in zones
    )
    listed = failed = count = 0

    async def worker() -> None:
        nonlocal listed, failed, count
        for name in names:  # one shared generator: CONCURRENCY workers pull from it
            count += 1
            try:
                await resolver.resolve(name, "A", search=False)
                listed += 1
            except dns.resolver.NXDOMAIN:
                pass
            except Exception:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed,
        "addresses": net.num_addresses,
        "listed_answers": listed,
        "failed_queries": failed,
        "queries_sent": count,
        "timeouts": None,
    }


CLIENTS = {
    "relaywatch": client_relaywatch,
    "pydnsbl": client_pydnsbl,
    "dnspython": client_dnspython,
}


def run_client_process(name: str, port: int, zones: int, network: str) -> dict:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            name,
            "--port",
            str(port),
            "--zones",
            str(zones),
            "--network",
            network,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def wait_for_server(port: int) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.settimeout(0.2)
    query = (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        + fastdns._wire(f"1.0.0.127.bl00.{fastdns.BENCH_DOMAIN}")
        + b"\x00\x01\x00\x01"
    )
    for _ in range(50):
        probe.sendto(query, ("127.0.0.1", port))
        try:
            probe.recv(512)
            return
        except TimeoutError:
            continue
    raise SystemExit("benchmark DNS server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description="blocklist lookup benchmark")
    parser.add_argument("--client", choices=sorted(CLIENTS))
    parser.add_argument("--port", type=int)
    parser.add_argument("--zones", type=int, default=10, help="IP lists (default 10)")
    parser.add_argument("--network", default="10.0.0.0/20", help="range to check (4,096 IPs)")
    parser.add_argument("--server-procs", type=int, default=1)
    parser.add_argument("--only", action="append", choices=sorted(CLIENTS))
    parser.add_argument("--memory", action="store_true", help="also relaywatch /20 vs /16 RSS")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the median is reported"
    )
    args = parser.parse_args()
    zones = fastdns.zone_names(args.zones)
    if args.client:
        result = asyncio.run(CLIENTS[args.client](args.port, zones, args.network))
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(json.dumps(result))
        return

    networks = [args.network]
    if args.memory:
        networks += ["10.1.0.0/16"]
    port, workers = fastdns.start_servers(zones, networks, args.server_procs)
    try:
        wait_for_server(port)
        queries = ipaddress.ip_network(args.network).num_addresses * len(zones)
        print(
            f"{ipaddress.ip_network(args.network).num_addresses:,} addresses × {len(zones)} "
            f"lists = {queries:,} lookups; concurrency {CONCURRENCY}; server: "
            f"{args.server_procs} process(es) on 127.0.0.1:{port}\n"
        )
        names = args.only or ["relaywatch", "pydnsbl", "dnspython"]
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for round_number in range(args.rounds):
            # interleaved, so a busy neighbour on the machine hurts every client alike
            for name in names:
                result = run_client_process(name, port, args.zones, args.network)
                runs[name].append(result)
                print(
                    f"  round {round_number + 1}: {name:<10} {result['elapsed']:6.2f}s "
                    f"{queries / result['elapsed']:>8,.0f} lookups/s",
                    flush=True,
                )
        rows = []
        for name in names:
            ordered = sorted(runs[name], key=lambda r: r["elapsed"])
            median = dict(ordered[len(ordered) // 2])
            median["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[name])
            rows.append((name, median))
        print(f"\nmedian of {args.rounds} round(s):")
        print(f"{'client':<32} {'seconds':>8} {'lookups/s':>10} {'peak RSS':>10}  notes")
        base = {name: queries / r["elapsed"] for name, r in rows}
        for name, r in rows:
            label = {
                "relaywatch": "relaywatch (handlers.blacklist)",
                "pydnsbl": "pydnsbl (aiodns/c-ares)",
                "dnspython": "dnspython asyncresolver loop",
            }[name]
            if "listed_addresses" in r:
                notes = f"listed addresses {r['listed_addresses']}"
            else:
                notes = f"listed answers {r['listed_answers']} (address × list)"
            if name == "relaywatch":
                notes += f", {r['queries_sent']:,} sent incl. self-test+TXT, {r['timeouts']} t/o"
            print(
                f"{label:<32} {r['elapsed']:>8.2f} {base[name]:>10,.0f} "
                f"{r['peak_rss_mb']:>8.1f}MB  {notes}"
            )
        if "relaywatch" in base and "pydnsbl" in base:
            print(f"\nrelaywatch / pydnsbl throughput: {base['relaywatch'] / base['pydnsbl']:.2f}×")
        if args.memory:
            print("\nmemory as the range grows (relaywatch, streaming):")
            for network in networks:
                r = run_client_process("relaywatch", port, args.zones, network)
                n = ipaddress.ip_network(network).num_addresses
                print(
                    f"  {network:<14} {n:>7,} addresses  {r['elapsed']:>7.2f}s  "
                    f"{n * len(zones) / r['elapsed']:>8,.0f} lookups/s  "
                    f"peak RSS {r['peak_rss_mb']:.1f}MB"
                )
    finally:
        for worker in workers:
            worker.terminate()


if __name__ == "__main__":
    main()
