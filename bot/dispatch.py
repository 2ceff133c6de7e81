"""Transport-neutral command dispatch: parse "/cmd args", authorize, audit, run, and reply.

The Slack listeners and the shell adapter both hand every command here, so authorization, the
audit log and error handling behave the same whatever the user typed into.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from bot.commands import chat_commands
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError, Requester
from bot.config import Config
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
from handlers.numbers import NumberError, parse_count

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


@dataclass
class Dispatcher:
    config: Config
    store: Store
    commands: dict[str, ModuleType | Any] = field(default_factory=chat_commands)
    admins: AdminDirectory | None = None
    rate_limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        slack = self.config.slack
        if self.admins is None:
            self.admins = AdminDirectory(slack.admins, slack.admin_usergroup)
        if self.rate_limiter is None:
            self.rate_limiter = RateLimiter(slack.commands_per_minute)

    # -- authorization ----------------------------------------------------------------------

    async def requester(self, inv: Invocation) -> Requester:
        # The shell adapter runs on the server itself: whoever types there can already read the
        # config and the store, so it is an admin.
        is_admin = inv.source == "shell" or await self.admins.is_admin(inv.user_id)  # type: ignore[union-attr]
        return Requester(user_id=inv.user_id, channel_id=inv.channel_id, is_admin=is_admin)

    def channel_denial(self, inv: Invocation) -> str:
        configured = [c.strip() for c in self.config.slack.allowed_channels if c.strip()]
        if inv.source == "shell" or not configured:
            return ""
        allowed = {c.lstrip("#").lower() for c in configured}
        if inv.channel_id.lower() in allowed or (
            inv.channel_name and inv.channel_name.lstrip("#").lower() in allowed
        ):
            return ""
        # IDs become channel links (markup made by channel_link; _deny shows it, audits it plain)
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

    def _deny(self, inv: Invocation, reason: str, markup: str = "") -> DispatchResult:
        """A refusal: `reason` is plain text (escaped here); `markup` replaces it in the reply
        when the bot's own links belong in it."""
        reason = readable(reason)
        self.store.audit(inv.user_id, inv.command, inv.args, False, reason, inv.channel_id)
        shown = markup or escape(reason)
        return DispatchResult(plain_reply(f":no_entry: {shown}", ephemeral=True), False, reason)

    def _denial(self, inv: Invocation) -> DispatchResult | None:
        channel = self.channel_denial(inv)
        if channel:
            return self._deny(inv, channel, markup=channel)
        rate = self.rate_denial(inv)
        return self._deny(inv, rate) if rate else None

    # -- commands ---------------------------------------------------------------------------

    async def handle(self, inv: Invocation, progress: Progress) -> DispatchResult:
        """Authorize, run and audit one command. Never raises: failures become replies."""
        module = self.commands.get(inv.command)
        if module is None:
            known = ", ".join(f"/{n}" for n in sorted(self.commands)) or "none"
            reason = f"unknown command /{inv.command} (available: {known}; try /mailhealth help)"
            self.store.audit(inv.user_id, inv.command, inv.args, False, reason, inv.channel_id)
            return DispatchResult(plain_reply(escape(reason), ephemeral=True), False, reason)
        denied = self._denial(inv)
        if denied:
            return denied
        if inv.args.strip().lower() in HELP_WORDS and not hasattr(module, "help_reply"):
            # `/blacklist help`: the usage line every command shares with the manifest's hint
            self.store.audit(inv.user_id, inv.command, inv.args, True, "help", inv.channel_id)
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
            reply = await module.run(ctx, inv.args)
        except CommandDenied as exc:
            return self._deny(inv, str(exc))
        except CommandUsageError as exc:
            reason = f"usage: {exc}"
            self.store.audit(inv.user_id, inv.command, inv.args, True, reason, inv.channel_id)
            text = f"{escape(str(exc))}\nUsage: `{escape(module.USAGE)}`"
            return DispatchResult(plain_reply(text, ephemeral=True), True, reason)
        except Exception:
            return self._failed(inv, "/" + inv.command)
        self.store.audit(inv.user_id, inv.command, inv.args, True, "", inv.channel_id)
        return DispatchResult(reply, True)

    def _failed(self, inv: Invocation, what: str) -> DispatchResult:
        error_id = new_error_id()
        # The trace goes to the log only: it can hold paths and config an ordinary user should
        # not see; the error id ties the message to the log line.
        log.exception(
            "command failed",
            extra={"error_id": error_id, "command": inv.command, "user": inv.user_id},
        )
        reason = f"error {error_id}"
        try:
            self.store.audit(inv.user_id, inv.command, inv.args, True, reason, inv.channel_id)
        except Exception:
            log.exception("cannot write the audit row", extra={"error_id": error_id})
        text = (
            f":warning: `{escape(what)}` failed unexpectedly (error id `{error_id}`). "
            "The details are in relaywatch's log; give an admin the error id."
        )
        return DispatchResult(plain_reply(text), True, reason, error_id)

    # -- button actions ---------------------------------------------------------------------

    async def show_details(self, inv: Invocation) -> DispatchResult:
        """The stored JSON of check `inv.args`, rendered by its engine's `details_text`."""
        denied = self._denial(inv)
        if denied:
            return denied
        try:
            record = self.store.check(parse_count(inv.args, "a check id"))
        except NumberError as exc:
            return self._bad_number(inv, f"{exc}, e.g. `details 42`")
        if record is None:
            reason = f"check {inv.args} is not in the history any more"
            self.store.audit(inv.user_id, inv.command, inv.args, True, reason, inv.channel_id)
            return DispatchResult(plain_reply(escape(reason), ephemeral=True), True, reason)
        try:
            body = details_text(record)
        except Exception:
            return self._failed(inv, "Show details")
        self.store.audit(inv.user_id, inv.command, inv.args, True, "", inv.channel_id)
        title = f"Details: {record.kind} {record.subject} ({record.finished_at})"
        filename = f"{record.kind}-{record.id}.txt"
        return DispatchResult(detail_reply(title, body, filename), True)

    def _bad_number(self, inv: Invocation, text: str) -> DispatchResult:
        """An id that is not a plain bounded number: a usage hint (the typed text is not echoed:
        it may be thousands of digits, or markup)."""
        reason = f"usage: {text}"
        self.store.audit(inv.user_id, inv.command, inv.args, True, reason, inv.channel_id)
        return DispatchResult(plain_reply(text, ephemeral=True), True, reason)

    async def acknowledge(self, inv: Invocation) -> DispatchResult:
        """Records who acknowledged alert `inv.args`, and when (shown in the next digest)."""
        denied = self._denial(inv)
        if denied:
            return denied
        try:
            alert_id = parse_count(inv.args, "an alert id")
        except NumberError as exc:
            return self._bad_number(inv, f"{exc}, e.g. `ack 7`")
        if not self.store.acknowledge_alert(alert_id, inv.user_id):
            reason = f"alert {inv.args} does not exist"
            self.store.audit(inv.user_id, inv.command, inv.args, True, reason, inv.channel_id)
            return DispatchResult(plain_reply(escape(reason), ephemeral=True), True, reason)
        self.store.audit(inv.user_id, inv.command, inv.args, True, "", inv.channel_id)
        who = "the shell operator" if inv.source == "shell" else mention(inv.user_id)
        text = f":white_check_mark: Acknowledged by {who} at {self.store.now()} (alert {alert_id})."
        return DispatchResult(plain_reply(text), True)

    async def delisting(self, inv: Invocation, field: str) -> DispatchResult:
        """Records that the cause of a listing is fixed, or that removal was requested."""
        from bot.monitor.delisting import mark_cases

        denied = self._denial(inv)
        if denied:
            return denied
        who = "the shell operator" if inv.source == "shell" else mention(inv.user_id)
        reply = mark_cases(self.store, self.config, inv.args, field, who, inv.user_id)
        self.store.audit(inv.user_id, inv.command, inv.args, True, "", inv.channel_id)
        return DispatchResult(reply, True)


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
