"""Ack latency of the Slack front end under a burst of concurrent slash commands.

Fires N (default 50) signed slash commands at once at relaywatch's HTTP mode (the real Bolt app,
listeners and dispatch) with a local stand-in for Slack's Web API, and measures how fast each
request is acknowledged and when its result reaches "Slack". Measured in the same run, for
comparison: a bare Bolt AsyncApp listener that only acks (the floor), and a Bolt listener that does
the work before acking (what happens without background work).

    .venv/bin/python bench/slack/run.py [-n 50] [--work-seconds 1.0]

Never contacts Slack: everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from slack_bolt.async_app import AsyncApp  # noqa: E402

from bot.app import build_app, start_http  # noqa: E402
from bot.commands.base import CommandContext  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.render.reply import ChatReply, sections  # noqa: E402
from bot.slack import web_client  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.fixtures.slack_api import SlackStandIn, sign, slash_body  # noqa: E402

SECRET = "bench-signing-secret"


@dataclass
class Row:
    name: str
    acks: list[float]  # seconds from send to the 200
    statuses: list[int]
    work_done: list[float]  # seconds from send to the result reaching the stand-in
    work_after_ack: int  # how many results arrived after their own ack


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def fire(url: str, n: int, command: str, slack: SlackStandIn) -> tuple[list, list, list]:
    """Sends n signed commands at once; returns (send times, ack times, statuses) per request."""
    bodies = [
        slash_body(
            command,
            f"job-{i}",
            user_id=f"UBENCH{i:03d}",
            channel_id=f"CBENCH{i:03d}",
            response_url=slack.response_url(f"r{i}"),
        )
        for i in range(n)
    ]
    sent = [0.0] * n
    acked = [0.0] * n
    statuses = [0] * n
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            headers = sign(SECRET, bodies[i])
            sent[i] = time.monotonic()
            async with session.post(url, data=bodies[i], headers=headers) as resp:
                await resp.read()
                statuses[i] = resp.status
            acked[i] = time.monotonic()

        await asyncio.gather(*(one(i) for i in range(n)))
    return sent, acked, statuses


def result_times(slack: SlackStandIn, n: int) -> dict[int, float]:
    """When each job's final result (its text "done job-i") arrived at the stand-in."""
    done: dict[int, float] = {}
    for call in slack.calls:
        if call.method in ("chat.postMessage", "chat.update") and str(
            call.params.get("text", "")
        ).startswith("done job-"):
            done[int(call.params["text"].split("-")[1])] = call.at
    return done


async def bench_relaywatch(n: int, work_seconds: float, slack: SlackStandIn) -> Row:
    async def slowcheck(ctx: CommandContext, text: str) -> ChatReply:
        # stands in for an engine: a few progress reports, then a result
        for step in range(4):
            await ctx.progress(f"{step}/4")
            await asyncio.sleep(work_seconds / 4)
        return ChatReply(text=f"done {text}", blocks=sections(f"done `{text}`"))

    config = Config()
    config.secrets.slack_bot_token = "xoxb-bench"
    config.secrets.slack_signing_secret = SECRET
    config.slack.api_url = slack.api_url
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store:
        command = SimpleNamespace(NAME="slowcheck", USAGE="/slowcheck", SUMMARY="", run=slowcheck)
        app, services = build_app(config, store, commands={"slowcheck": command})
        server = await start_http(app, "127.0.0.1", 0)
        try:
            await warm_up(server.url, slack)
            slack.calls.clear()
            sent, acked, statuses = await fire(server.url, n, "/slowcheck", slack)
            await services.work.drain(within=60)
        finally:
            await server.stop()
        audited = len(store.audit_log(limit=10 * n))
    done = result_times(slack, n)
    row = summarize("relaywatch (ack, then work in background)", sent, acked, statuses, done)
    if audited < n:
        print(f"warning: only {audited} of {n} commands audited", file=sys.stderr)
    return row


async def bench_bolt(n: int, work_seconds: float, slack: SlackStandIn, inline: bool) -> Row:
    """Plain Bolt: ack only (the floor), or do the work and post before acking (naive)."""
    config = Config()
    config.secrets.slack_bot_token = "xoxb-bench"
    app = AsyncApp(
        client=web_client(config, env={"SLACK_API_URL": slack.api_url}), signing_secret=SECRET
    )

    async def handler(ack, command, client) -> None:  # type: ignore[no-untyped-def]
        if inline:
            await asyncio.sleep(work_seconds)
            text = f"done {command['text']}"
            await client.chat_postMessage(channel=command["channel_id"], text=text)
        await ack()

    app.command("/slowcheck")(handler)
    server = await start_http(app, "127.0.0.1", 0)
    try:
        await warm_up(server.url, slack)
        slack.calls.clear()
        sent, acked, statuses = await fire(server.url, n, "/slowcheck", slack)
        await asyncio.sleep(0.2)
    finally:
        await server.stop()
    await asyncio.sleep(work_seconds)  # let the warm-up's background work finish too
    name = "bolt, work before ack (naive)" if inline else "bolt, bare ack only (floor)"
    return summarize(name, sent, acked, statuses, result_times(slack, n) if inline else {})


async def warm_up(url: str, slack: SlackStandIn) -> None:
    # one request first, so auth.test and connection setup are not charged to the burst
    body = slash_body("/slowcheck", "warm", response_url=slack.response_url("warm"))
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=sign(SECRET, body)) as resp:
            await resp.read()
    await asyncio.sleep(0.2)


def summarize(
    name: str, sent: list[float], acked: list[float], statuses: list[int], done: dict[int, float]
) -> Row:
    acks = [a - s for s, a in zip(sent, acked, strict=True)]
    work = [done[i] - sent[i] for i in sorted(done)]
    after = sum(1 for i, t in done.items() if t >= acked[i])
    return Row(name, acks, statuses, work, after)


def table(rows: list[Row], n: int) -> str:
    head = (
        f"{'front end':<42} {'ok':>5} {'ack p50':>9} {'ack p99':>9} {'ack max':>9} "
        f"{'result p50':>11} {'results after ack':>18}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ok = sum(1 for s in r.statuses if s == 200)
        result = f"{statistics.median(r.work_done) * 1000:8.0f} ms" if r.work_done else "—"
        after = f"{r.work_after_ack}/{len(r.work_done)}" if r.work_done else "—"
        lines.append(
            f"{r.name:<42} {ok:>2}/{n:<2} {percentile(r.acks, 50) * 1000:6.1f} ms "
            f"{percentile(r.acks, 99) * 1000:6.1f} ms {max(r.acks) * 1000:6.1f} ms "
            f"{result:>11} {after:>18}"
        )
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50, help="concurrent slash commands (default 50)")
    parser.add_argument(
        "--work-seconds", type=float, default=1.0, help="how long each command works (default 1)"
    )
    args = parser.parse_args()
    slack = await SlackStandIn().start()
    try:
        rows = [
            await bench_relaywatch(args.n, args.work_seconds, slack),
            await bench_bolt(args.n, args.work_seconds, slack, inline=False),
            await bench_bolt(args.n, args.work_seconds, slack, inline=True),
        ]
    finally:
        await slack.stop()
    print(f"{args.n} concurrent signed slash commands, each working {args.work_seconds:.1f} s\n")
    print(table(rows, args.n))
    ours = rows[0]
    p99 = percentile(ours.acks, 99) * 1000
    verdict = "meets" if p99 < 300 else "MISSES"
    print(f"\nrelaywatch ack p99 {p99:.1f} ms {verdict} the 300 ms target (Slack allows 3 s)")
    complete = len(ours.work_done) == args.n and ours.work_after_ack == args.n
    print(
        f"relaywatch results: {len(ours.work_done)}/{args.n} delivered, "
        f"{ours.work_after_ack} after their ack"
    )
    return 0 if p99 < 300 and complete else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
