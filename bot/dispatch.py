"""Transport-neutral command dispatch: parse "/cmd args", authorize, audit, run, and reply.

The Slack listeners and the shell adapter both hand every command here, so authorization, the
audit log and error handling behave the same whatever the user typed into.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from bot.auditlog import AuditRow, AuditWriter, RefusalLog
from bot.commands import chat_commands
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError, Requester
from bot.config import Config
from bot.jobs import JobGate
from bot.render.reply import (
    ChatReply,
    channel_link,
    detail_reply,
    escape,
    mention,
    plain_reply,
    readable,
)
from bot.store import CheckRecord, Store

log = logging.getLogger("relaywatch.dispatch")

Progress = Callable[[str], Awaitable[None]]
MemberLookup = Callable[[str], Awaitable[Iterable[str]]]

SHELL_CHANNEL = "shell"
# what asks a command for its usage instead of running it
HELP_WORDS = frozenset({"help", "--help", "-h", "?"})

# check kind (as stored) → candidate renderer modules under bot.render, first found wins
_RENDERERS: dict[str, tuple[str, ...]] = {
    "blacklist": ("blacklist",),
    "relay": ("relay", "relaycheck"),
    "mailsummary": ("mailsummary", "logsummary"),
    "domain": ("domaincheck",),
}


@dataclass(frozen=True)
class Invocation:
    """One command as a user typed it, with where it came from."""

    command: str  # without the slash: "blacklist"
    args: str
    user_id: str
    channel_id: str
    channel_name: str = ""
    source: str = "slack"  # slack | mention | button | shell
    thread_ts: str = ""  # the thread it was typed or pressed in ("" at the channel's top level)

    @property
    def line(self) -> str:
        return f"/{self.command} {self.args}".strip()


@dataclass
class DispatchResult:
    reply: ChatReply
    allowed: bool
    reason: str = ""
    error_id: str = ""


def parse_command_line(line: str) -> tuple[str, str]:
    """'/blacklist 192.0.2.1' or 'blacklist 192.0.2.1' → ('blacklist', '192.0.2.1')."""
    stripped = line.strip()
    name, _, rest = stripped.partition(" ")
    return name.lstrip("/").lower(), rest.strip()


def new_error_id() -> str:
    return uuid.uuid4().hex[:8]


class RateLimiter:
    """At most `per_minute` commands per user in any sliding 60-second window (0: unlimited)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def check(self, user_id: str) -> float:
        """Records one command; returns 0 when allowed, else the seconds until the next is."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        seen = self._seen.setdefault(user_id, deque())
        while seen and now - seen[0] >= 60.0:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return max(0.1, 60.0 - (now - seen[0]))
        seen.append(now)
        return 0.0


class AdminDirectory:
    """Who is an admin: user IDs from config, plus members of a Slack user group, cached."""

    def __init__(
        self,
        admins: Iterable[str],
        usergroup: str = "",
        lookup: MemberLookup | None = None,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admins = {a.strip() for a in admins if a.strip()}
        self.usergroup = usergroup.strip()
        self.lookup = lookup
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._members: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._refreshing: asyncio.Lock | None = None  # created in the loop that uses it

    async def is_admin(self, user_id: str) -> bool:
        if user_id in self.admins:
            return True
        if not self.usergroup or self.lookup is None:
            return False
        return user_id in await self._group_members()

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self.clock() - self._fetched_at < self.ttl_seconds

    async def _group_members(self) -> frozenset[str]:
        if self._fresh():
            return self._members
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        # a burst of commands right after start shares one lookup instead of one each
        async with self._refreshing:
            if self._fresh():
                return self._members
            return await self._refresh()

    async def _refresh(self) -> frozenset[str]:
        now = self.clock()
        try:
            self._members = frozenset(await self.lookup(self.usergroup))  # type: ignore[misc]
        except Exception as exc:
            # Fail closed, and do not cache the failure: the next command asks Slack again.
            log.warning(
                "cannot read admin user group members",
                extra={"usergroup": self.usergroup, "error": str(exc)},
            )
            return frozenset()
        self._fetched_at = now
        return self._members


@dataclass(frozen=True)
class Refusal:
    """A request turned away before any work: answered from memory, audited coalesced."""

    reason: str  # plain text (what the audit log keeps)
    kind: str  # "rate limit" | "unknown command" | "channel not allowed"
    first: bool  # the user's first refusal this minute: worth a (costly) answer
    markup: str = ""  # the bot's own links (channel_link) for the reply, when there are any

    @property
    def shown(self) -> str:
        """What the reply says: the bot's markup, or the reason with everything escaped."""
        return self.markup or escape(self.reason)


@dataclass
class Dispatcher:
    config: Config
    store: Store
    commands: dict[str, ModuleType | Any] = field(default_factory=chat_commands)
    admins: AdminDirectory | None = None
    rate_limiter: RateLimiter | None = None
    audit: AuditWriter | None = None
    refusals: RefusalLog | None = None
    runner: CommandRunner | None = None
    jobs: JobGate | None = None

    def __post_init__(self) -> None:
        slack = self.config.slack
        if self.jobs is None:
            limits = self.config.limits
            self.jobs = JobGate(
                per_user=limits.heavy_jobs_per_user,
                admin_per_user=limits.admin_heavy_jobs_per_user,
                total=limits.heavy_jobs_total,
            )
        if self.admins is None:
            self.admins = AdminDirectory(slack.admins, slack.admin_usergroup)
        if self.rate_limiter is None:
            self.rate_limiter = RateLimiter(slack.commands_per_minute)
        if self.audit is None:
            self.audit = AuditWriter(self.store)
        if self.refusals is None:
            self.refusals = RefusalLog(self.audit)
        if self.runner is None:
            self.runner = CommandRunner()

    # -- admission: in memory only, before the ack and before any other work ----------------

    def admit(self, inv: Invocation) -> Refusal | None:
        """Rate limit, known command, allowed channel; None: go ahead.

        Costs no store or Slack call, so a transport can answer a refusal in its ack; the audit
        row is written in the background, coalesced per user and minute.
        """
        self.refusals.flush(expired_only=True)  # type: ignore[union-attr]
        for kind, text in (
            ("rate limit", self.rate_denial(inv)),
            ("unknown command", self.unknown_denial(inv)),
            ("channel not allowed", self.channel_denial(inv)),
        ):
            if text:
                # the channel refusal carries the bot's channel links; the audit keeps them plain
                reason = readable(text)
                first = self.refusals.record(  # type: ignore[union-attr]
                    inv.user_id, inv.command, inv.args, kind, reason, inv.channel_id
                )
                return Refusal(reason, kind, first, text if text != reason else "")
        return None

    def unknown_denial(self, inv: Invocation) -> str:
        if inv.command in self.commands or inv.command in _BUTTON_COMMANDS:
            return ""
        known = ", ".join(f"/{n}" for n in sorted(self.commands)) or "none"
        # plain text: the reply escapes it (what was typed may be markup)
        return f"unknown command /{inv.command[:40]} (available: {known}; try /mailhealth help)"

    async def close(self) -> None:
        """Writes the pending refusal counts and every queued audit row (at shutdown)."""
        self.refusals.flush()  # type: ignore[union-attr]
        await self.audit.drain()  # type: ignore[union-attr]

    # -- authorization ----------------------------------------------------------------------

    async def requester(self, inv: Invocation) -> Requester:
        # The shell adapter runs on the server itself: whoever types there can already read the
        # config and the store, so it is an admin.
        is_admin = inv.source == "shell" or await self.admins.is_admin(inv.user_id)  # type: ignore[union-attr]
        return Requester(user_id=inv.user_id, channel_id=inv.channel_id, is_admin=is_admin)

    def channel_denial(self, inv: Invocation) -> str:
        # By channel ID only, exact: a channel's name is chosen by whoever creates or renames
        # it, so a name match would let any member open a look-alike channel.
        configured = [c.strip() for c in self.config.slack.allowed_channels if c.strip()]
        if inv.source == "shell" or not configured or inv.channel_id in configured:
            return ""
        # the bot's own channel links (channel_link): the reply shows them, the audit keeps ids
        where = ", ".join(channel_link(c) for c in configured)
        return f"relaywatch is not enabled in this channel; use it in {where}."

    def rate_denial(self, inv: Invocation) -> str:
        if inv.source == "shell":
            return ""
        wait = self.rate_limiter.check(inv.user_id)  # type: ignore[union-attr]
        if not wait:
            return ""
        limit = self.config.slack.commands_per_minute
        return f"slow down: at most {limit} commands a minute; try again in {wait:.0f} s."

    async def _record(self, inv: Invocation, allowed: bool, reason: str = "") -> None:
        row = AuditRow(inv.user_id, inv.command, inv.args, allowed, reason, inv.channel_id)
        await self.audit.write(row)  # type: ignore[union-attr]

    async def _deny(self, inv: Invocation, reason: str) -> DispatchResult:
        """A refusal: `reason` is plain text (a command's words may quote what was typed), so
        the reply escapes it."""
        await self._record(inv, False, reason)
        reply = plain_reply(f":no_entry: {escape(reason)}", ephemeral=True)
        return DispatchResult(reply, False, reason)

    def _refused(self, refusal: Refusal) -> DispatchResult:
        reply = plain_reply(f":no_entry: {refusal.shown}", ephemeral=True)
        return DispatchResult(reply, False, refusal.reason)

    # -- commands ---------------------------------------------------------------------------

    async def handle(self, inv: Invocation, progress: Progress) -> DispatchResult:
        """Admit, authorize, run and audit one command. Never raises: failures become replies."""
        refusal = self.admit(inv)
        if refusal is not None:
            await self.audit.drain()  # type: ignore[union-attr]
            return self._refused(refusal)
        return await self.run(inv, progress)

    async def run(self, inv: Invocation, progress: Progress) -> DispatchResult:
        """Runs an admitted command (see `admit`); never raises."""
        try:
            return await self._run(inv, progress)
        except Exception:
            return await self._failed(inv, "/" + inv.command)

    async def _run(self, inv: Invocation, progress: Progress) -> DispatchResult:
        module = self.commands.get(inv.command)
        if module is None:  # e.g. a Re-run button whose value names a button action
            return await self._deny(inv, f"unknown command /{inv.command[:40]}")
        if inv.args.strip().lower() in HELP_WORDS and not hasattr(module, "help_reply"):
            # `/blacklist help`: the usage line every command shares with the manifest's hint
            await self._record(inv, True, "help")
            text = f"`{escape(module.USAGE)}`\n{escape(module.SUMMARY)}"
            return DispatchResult(plain_reply(text, ephemeral=True), True)
        ctx = CommandContext(
            config=self.config,
            store=self.store,
            requester=await self.requester(inv),
            progress=progress,
            thread_ts=inv.thread_ts,
        )
        try:
            reply = await self._run_command(module, ctx, inv.args)
        except CommandDenied as exc:
            return await self._deny(inv, str(exc))
        except CommandUsageError as exc:
            await self._record(inv, True, f"usage: {exc}")
            text = f"{escape(str(exc))}\nUsage: `{escape(module.USAGE)}`"
            return DispatchResult(plain_reply(text, ephemeral=True), True, f"usage: {exc}")
        except Exception:
            return await self._failed(inv, "/" + inv.command)
        await self._record(inv, True)
        return DispatchResult(reply, True)

    async def _run_command(self, module: Any, ctx: CommandContext, args: str) -> Any:
        """Runs the command off the loop; heavy checks first wait for a place (see JobGate)."""
        if (
            not getattr(module, "HEAVY", False)
            or ctx.requester.user_id == ""
            or (ctx.requester.is_admin and ctx.requester.channel_id == SHELL_CHANNEL)
        ):
            return await self.runner.run(module.run, ctx, args)  # type: ignore[union-attr]
        jobs = self.jobs
        assert jobs is not None

        async def queued(ahead: int) -> None:
            waiting = f"; {ahead} waiting before yours" if ahead else ""
            await ctx.progress(
                f"queued: relaywatch runs at most {jobs.total} checks at once and "
                f"{jobs.per_user} per person{waiting}. It starts by itself."
            )

        requester = ctx.requester
        async with jobs.slot(requester.user_id, requester.is_admin, on_queued=queued):
            return await self.runner.run(module.run, ctx, args)  # type: ignore[union-attr]

    async def _failed(self, inv: Invocation, what: str) -> DispatchResult:
        error_id = new_error_id()
        # The trace goes to the log only: it can hold paths and config an ordinary user should
        # not see; the error id ties the message to the log line.
        log.exception(
            "command failed",
            extra={"error_id": error_id, "command": inv.command, "user": inv.user_id},
        )
        reason = f"error {error_id}"
        try:
            await self._record(inv, True, reason)
        except Exception:
            log.exception("cannot write the audit row", extra={"error_id": error_id})
        text = (
            f":warning: `{escape(what)}` failed unexpectedly and could not complete "
            f"(error id `{error_id}`). "
            "The details are in relaywatch's log; give an admin the error id."
        )
        return DispatchResult(plain_reply(text), True, reason, error_id)

    # -- button actions (admitted by the transport first) ----------------------------------

    async def show_details(self, inv: Invocation) -> DispatchResult:
        """The stored JSON of check `inv.args`, rendered by its engine's `details_text`."""
        try:
            return await self._show_details(inv)
        except Exception:
            return await self._failed(inv, "Show details")

    async def _show_details(self, inv: Invocation) -> DispatchResult:
        check_id = _row_id(inv.args)
        record = None
        if check_id is not None:
            record = await asyncio.to_thread(self.store.check, check_id)
        if record is None:
            reason = f"check {escape(inv.args[:20])} is not in the history any more"
            await self._record(inv, True, reason)
            return DispatchResult(plain_reply(reason, ephemeral=True), True, reason)
        body = await asyncio.to_thread(details_text, record)
        await self._record(inv, True)
        title = f"Details: {record.kind} {record.subject} ({record.finished_at})"
        filename = f"{record.kind}-{record.id}.txt"
        return DispatchResult(detail_reply(title, body, filename), True)

    async def acknowledge(self, inv: Invocation) -> DispatchResult:
        """Records who acknowledged alert `inv.args`, and when (shown in the next digest)."""
        try:
            return await self._acknowledge(inv)
        except Exception:
            return await self._failed(inv, "Acknowledge")

    async def _acknowledge(self, inv: Invocation) -> DispatchResult:
        alert_id = _row_id(inv.args)
        done = alert_id is not None and await asyncio.to_thread(
            self.store.acknowledge_alert, alert_id, inv.user_id
        )
        if not done:
            reason = f"alert {escape(inv.args[:20])} does not exist"
            await self._record(inv, True, reason)
            return DispatchResult(plain_reply(reason, ephemeral=True), True, reason)
        await self._record(inv, True)
        who = "the shell operator" if inv.source == "shell" else mention(inv.user_id)
        text = f":white_check_mark: Acknowledged by {who} at {self.store.now()} (alert {alert_id})."
        return DispatchResult(plain_reply(text), True)

    async def delisting(self, inv: Invocation, field: str) -> DispatchResult:
        """Records that the cause of a listing is fixed, or that removal was requested."""
        try:
            return await self._delisting(inv, field)
        except Exception:
            return await self._failed(inv, "Delisting")

    async def _delisting(self, inv: Invocation, field: str) -> DispatchResult:
        from bot.monitor.delisting import mark_cases

        who = "the shell operator" if inv.source == "shell" else mention(inv.user_id)
        reply = await asyncio.to_thread(
            mark_cases, self.store, self.config, inv.args, field, who, inv.user_id
        )
        await self._record(inv, True)
        return DispatchResult(reply, True)


# button actions admitted like commands, though they are not typed
_BUTTON_COMMANDS = (
    "show_details",
    "acknowledge",
    "delisting_cause_fixed",
    "delisting_requested",
)
# SQLite's INTEGER is a signed 64-bit value; a longer id cannot name a row
_MAX_ROW_ID = 2**63 - 1


def _row_id(text: str) -> int | None:
    """A positive row id typed or sent by a button; None for anything else (no traceback)."""
    text = text.strip()
    if not text or len(text) > 19 or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 0 < value <= _MAX_ROW_ID else None


class CommandRunner:
    """Runs a chat command in a worker thread with its own event loop.

    Commands call the store synchronously, and SQLite waits (up to its busy timeout) while
    another process holds the write lock; on the bot's loop that wait would stall every ack.
    In a thread it only delays that command. Progress calls are handed back to the caller's loop.
    """

    def __init__(self, max_threads: int = 32) -> None:
        self._executor = ThreadPoolExecutor(max_threads, thread_name_prefix="relaywatch-command")

    async def run(
        self, run: Callable[[CommandContext, str], Awaitable[Any]], ctx: CommandContext, args: str
    ) -> Any:
        home = asyncio.get_running_loop()
        progress = ctx.progress

        async def forward(text: str) -> None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(progress(text), home))

        ctx = dataclasses.replace(ctx, progress=forward)
        return await home.run_in_executor(self._executor, lambda: asyncio.run(run(ctx, args)))


def details_text(record: CheckRecord) -> str:
    """Renders a stored check with `bot.render.<engine>.details_text`, the engine's own format."""
    for name in _RENDERERS.get(record.kind, (record.kind,)):
        try:
            module = importlib.import_module(f"bot.render.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bot.render.{name}":
                raise
            continue
        render = getattr(module, "details_text", None)
        if render is not None:
            return str(render(record.result))
    # No renderer in this build: the stored document itself is still the evidence.
    return json.dumps(record.result, indent=2, sort_keys=True)
