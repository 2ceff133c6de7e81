"""What any workspace member can make the bot do: windows, targets, concurrent checks (queued)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from bot.commands import mailsummary, relaycheck
from bot.commands.base import CommandContext, CommandUsageError, Requester
from bot.config import Config, ConfigError, load_config
from bot.jobs import JobGate
from bot.render.reply import ChatReply
from bot.store import Store
from handlers.relay import ResolvedTarget, TargetNotAllowed, TargetPolicy
from handlers.relay.targets import TargetSpec
from tests.bot import test_app
from tests.bot.test_app import ADMIN, Bot

bot = test_app.bot


async def _quiet(text: str) -> None:
    return None


def _ctx(store: Store, admin: bool, config: Config | None = None) -> CommandContext:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    return CommandContext(
        config or Config(), store, Requester("U1", "C1", admin), _quiet, lambda: now
    )


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "rw.db") as opened:
        yield opened


@pytest.mark.parametrize("window", ["8d", "520w", "2026-01-01T00:00", "30d"])
async def test_mailsummary_window_is_capped_for_non_admins(store, window) -> None:
    with pytest.raises(CommandUsageError, match="at most 7 days"):
        await mailsummary.run(_ctx(store, admin=False), window)
    assert store.checks("mailsummary") == []


async def test_mailsummary_cap_for_admins_is_their_own(store) -> None:
    with pytest.raises(CommandUsageError, match="at most 400 days"):
        await mailsummary.run(_ctx(store, admin=True), "520w")


async def test_relaycheck_target_count_is_capped(store) -> None:
    many = " ".join(f"192.0.2.{i}" for i in range(1, 10))
    with pytest.raises(CommandUsageError, match="at most 8 servers"):
        await relaycheck.run(_ctx(store, admin=False), many)
    many_more = " ".join(f"192.0.2.{i}" for i in range(1, 258))
    with pytest.raises(CommandUsageError, match="at most 256 servers"):
        await relaycheck.run(_ctx(store, admin=True), many_more)


def test_a_refusal_does_not_say_what_a_name_resolves_to() -> None:
    policy = TargetPolicy(restricted=True, watched=lambda _: False)
    target = ResolvedTarget(TargetSpec("evil.example", 25), "10.0.0.1")
    with pytest.raises(TargetNotAllowed) as refused:
        policy.check(target)
    assert "evil.example" in str(refused.value)
    assert "10.0.0.1" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[limits]\nheavy_jobs_total = 0\n", "limits.heavy_jobs_total: must be at least 1"),
        (
            "[limits]\nrelaycheck_max_targets = 300\n",
            "limits.admin_relaycheck_max_targets: must not be less than",
        ),
        ('[limits]\nmailsummary_max_days = "a week"\n', "limits.mailsummary_max_days: expected"),
    ],
)
def test_limits_are_validated(tmp_path, text, reason) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        load_config(str(path), env={"HOME": str(tmp_path)})


# -- the job gate ---------------------------------------------------------------------------


async def test_job_gate_limits_per_user_and_overall_in_order() -> None:
    gate = JobGate(per_user=1, admin_per_user=2, total=2)
    started: list[str] = []
    release = {name: asyncio.Event() for name in ("a1", "a2", "b1", "c1", "admin1", "admin2")}
    told: dict[str, int] = {}

    async def job(name: str, user: str, admin: bool = False) -> None:
        async def queued(ahead: int) -> None:
            told[name] = ahead

        async with gate.slot(user, admin, on_queued=queued):
            started.append(name)
            await release[name].wait()

    tasks = [asyncio.create_task(job("a1", "UA"))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(job("a2", "UA")))  # UA's second: waits for a1
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(job("b1", "UB")))  # another user: may start
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(job("c1", "UC")))  # total reached: waits
    await asyncio.sleep(0.01)
    assert started == ["a1", "b1"]
    assert told == {"a2": 0, "c1": 1}
    release["a1"].set()
    await asyncio.sleep(0.01)
    assert started == ["a1", "b1", "a2"]  # first come, first served
    release["b1"].set()
    await asyncio.sleep(0.01)
    assert started == ["a1", "b1", "a2", "c1"]
    release["a2"].set()
    release["c1"].set()
    await asyncio.gather(*tasks)
    assert gate.running == 0 and gate.queued == 0


async def test_a_cancelled_queued_job_gives_its_place_back() -> None:
    gate = JobGate(per_user=1, admin_per_user=1, total=1)
    hold = asyncio.Event()

    async def first() -> None:
        async with gate.slot("U1", False):
            await hold.wait()

    async def second() -> None:
        async with gate.slot("U2", False):
            pass

    one = asyncio.create_task(first())
    await asyncio.sleep(0)
    two = asyncio.create_task(second())
    await asyncio.sleep(0.01)
    two.cancel()
    hold.set()
    await one
    with pytest.raises(asyncio.CancelledError):
        await two
    assert gate.running == 0 and gate.queued == 0
    async with gate.slot("U3", False):
        assert gate.running == 1


# -- through the real app: a burst of heavy checks is queued, and every one is answered ---------


async def test_a_burst_of_heavy_checks_is_queued_and_all_answered(bot: Bot) -> None:
    limits = bot.services.config.limits
    limits.heavy_jobs_total = 2
    gate = bot.services.dispatcher.jobs
    gate.total = 2
    running = {"now": 0, "most": 0}

    async def heavy(ctx: CommandContext, text: str) -> ChatReply:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.15)
        running["now"] -= 1
        return ChatReply(text=f"heavy {text} done")

    bot.services.dispatcher.commands["heavy"] = SimpleNamespace(
        NAME="heavy", USAGE="/heavy", SUMMARY="", HEAVY=True, run=heavy
    )
    users = [f"UHEAVY{i}" for i in range(5)]
    sent = await asyncio.gather(*(bot.slash("/heavy", u, user=u) for u in users))
    sent.append(await bot.slash("/heavy", "again", user=users[0]))  # one per person
    assert all(status == 200 and elapsed < 1.0 for status, _, elapsed in sent)
    await bot.settle()
    texts = [str(c.params.get("text")) for c in bot.slack.calls if c.ok]
    assert any("queued: relaywatch runs at most 2 checks at once" in t for t in texts)
    for u in users:
        assert any(f"heavy {u} done" in t for t in texts)
    assert any("heavy again done" in t for t in texts)
    assert running["most"] <= 2
    assert gate.running == 0 and gate.queued == 0
    assert len(bot.store.audit_log()) == 6


async def test_admins_may_run_more_at_once(bot: Bot) -> None:
    gate = bot.services.dispatcher.jobs
    assert gate.admin_per_user == 2 and gate.per_user == 1
    order: list[str] = []

    async def heavy(ctx: CommandContext, text: str) -> ChatReply:
        order.append(f"start {text}")
        await asyncio.sleep(0.1)
        order.append(f"end {text}")
        return ChatReply(text=f"{text} done")

    bot.services.dispatcher.commands["heavy"] = SimpleNamespace(
        NAME="heavy", USAGE="/heavy", SUMMARY="", HEAVY=True, run=heavy
    )
    await asyncio.gather(
        bot.slash("/heavy", "one", user=ADMIN), bot.slash("/heavy", "two", user=ADMIN)
    )
    await bot.settle()
    assert order[:2] == ["start one", "start two"] or order[:2] == ["start two", "start one"]
