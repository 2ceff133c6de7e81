"""Bench servers: aiosmtpd open and closed relays on 127.0.1.N:25, in their own process.

Port 25 because nmap's smtp-open-relay only runs on SMTP ports (25/465/587) without -sV; the
127.0.1.0/24 loopback addresses let every server have its own address. Needs root for port 25.
Prints {"open": [...], "closed": [...]} as one JSON line, then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures.relay_smtp import PolicySMTP, RelayPolicy, closed_rcpt


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open", type=int, default=11)
    parser.add_argument("--closed", type=int, default=11)
    parser.add_argument("--port", type=int, default=25)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    started: dict[str, list[str]] = {"open": [], "closed": []}
    servers = []
    for index in range(args.open + args.closed):
        kind = "open" if index < args.open else "closed"
        address = f"127.0.1.{index + 1}"
        policy = RelayPolicy() if kind == "open" else RelayPolicy(rcpt=closed_rcpt)
        servers.append(
            await loop.create_server(
                lambda policy=policy: PolicySMTP(policy, timeout=60), host=address, port=args.port
            )
        )
        started[kind].append(f"{address}:{args.port}")
    print(json.dumps(started), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
