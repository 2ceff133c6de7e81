"""What a chat command receives (who, where, config, store, progress) and the errors it raises."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.config import Config
from bot.store import Store, utc_now
from bot.watchlist import WatchValueError, split_host_port

log = logging.getLogger(__name__)


class CommandUsageError(Exception):
    """Bad input: shown to the requester only, as one line that says what to type instead."""


class CommandDenied(Exception):
    """Not allowed for this requester: shown to the requester only, with the reason."""


@dataclass(frozen=True)
class Requester:
    user_id: str
    channel_id: str
    is_admin: bool


@dataclass
class CommandContext:
    config: Config
    store: Store
    requester: Requester
    # updates the "checking…" message; the adapter throttles it, so call as often as is useful
    progress: Callable[[str], Awaitable[None]]
    clock: Callable[[], datetime] = utc_now
    # the thread the command came from (a mention or a button in an alert's thread), if any
    thread_ts: str = ""

    def watch_covers(self, target: str) -> bool:
        """True when `target` (an IP, a name, or host[:port]) is on, or inside, the watch list."""
        return target_is_watched(self.store, target)

    def require_watched(
        self, target: str, also_allowed: Callable[[str], bool] | None = None
    ) -> None:
        """Non-admins may only check watch-list targets (or what `also_allowed` permits)."""
        if self.requester.is_admin or self.watch_covers(target):
            return
        if also_allowed is not None and also_allowed(target):
            return
        raise CommandDenied(
            f"{target} is not on the watch list; only admins may check other targets. "
            "Ask an admin to run `/mailhealth watch add " + target + "`."
        )


def unlink_word(word: str) -> str:
    """A word as the user typed it: Slack turns names into links (<http://example.com|example.com>,
    <mailto:a@b|a@b>), so a link is read as its label."""
    if word.startswith("<") and word.endswith(">"):
        inner = word[1:-1]
        label = inner.partition("|")[2]
        return label or inner.removeprefix("http://").removeprefix("https://").removeprefix(
            "mailto:"
        )
    return word


def target_is_watched(store: Store, target: str) -> bool:
    host = _host_of(target.strip().lower().rstrip("."))
    address = _address(host)
    for item in store.watch_list():
        watched = item.value.lower()
        if item.kind == "server":
            if _host_of(watched) == host:
                return True
        elif address is not None and item.kind in ("ip", "cidr"):
            if address in ipaddress.ip_network(item.value, strict=False):
                return True
        elif address is None and item.kind == "domain":
            if host == watched or host.endswith("." + watched):
                return True
    return False


def _host_of(text: str) -> str:
    """'mx.example.com:25' / '[2001:db8::1]:25' → the host; anything unparsable stays as it is."""
    try:
        return split_host_port(text)[0]
    except WatchValueError:
        return text


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def forwarded_progress(
    send: Callable[[str], Awaitable[None]],
) -> AsyncIterator[Callable[[str], None]]:
    """Bridges an engine's progress calls to the chat's async progress update.

    Engines report progress as plain calls, some from worker threads; the chat update is async and
    throttled by the adapter. The callback yielded here keeps only the newest sentence and sends
    one update at a time; a failed update never fails the check.
    """
    loop = asyncio.get_running_loop()
    latest = _LatestSentence()

    def report(text: str) -> None:
        loop.call_soon_threadsafe(latest.set, text)

    async def forward() -> None:
        while True:
            await latest.changed.wait()
            latest.changed.clear()
            try:
                await send(latest.text)
            except Exception:
                log.warning("progress update failed", exc_info=True)

    task = asyncio.create_task(forward())
    try:
        yield report
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _LatestSentence:
    def __init__(self) -> None:
        self.text = ""
        self.changed = asyncio.Event()

    def set(self, text: str) -> None:
        self.text = text
        self.changed.set()
