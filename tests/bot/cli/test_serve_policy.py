"""`relaywatch serve` starts the policy service in its own loop when [policy] listen is set."""

from __future__ import annotations

import asyncio
import re
import sys

from tests.bot.cli.test_serve import _env
from tests.handlers.policy.policy_requests import request_bytes


async def test_serve_shell_runs_the_policy_service_beside_it(tmp_path) -> None:
    env = _env(tmp_path, RELAYWATCH_POLICY_LISTEN="127.0.0.1:0")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--shell",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None and proc.stdin is not None
        line = ""
        for _ in range(20):
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            if "policy service listening" in line:
                break
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        reader, writer = await asyncio.open_connection("127.0.0.1", int(match.group(1)))
        writer.write(request_bytes())
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 10) == b"action=DUNNO\n\n"
        writer.close()
        # one command through the shell, then end of input: the bot and the service stop
        proc.stdin.write(b"/mailhealth watch list\n")
        await proc.stdin.drain()
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
