"""Containment expiry in chat: a reminder in the thread before an entry lapses, a note when it has.

The policy service stops applying an entry by itself at expires_at; this job only tells people.
Both messages are claimed in the store first (compare-and-set), so two bot processes on one store
post each once. A bot that was down posts the lapse notes it missed, up to a day back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.config import Config
from bot.dispatch import SHELL_CHANNEL
from bot.poster import ChatPoster
from bot.render.containment import release_hint, subject_text, until
from bot.render.reply import ChatReply, escape, plain_reply
from bot.store import Store, utc_now
from handlers.policy.containment import parse_duration
from handlers.policy.model import Containment

log = logging.getLogger("relaywatch.expiry")

CHECK_EVERY = timedelta(seconds=30)
LAPSE_NOTES_SINCE = timedelta(days=1)


class ContainmentExpiry:
    def __init__(
        self,
        config: Config,
        store: Store,
        poster: ChatPoster,
        channel: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self.poster = poster
        self.channel = channel  # where entries with no thread of their own are announced
        self.clock = clock

    async def run_once(self) -> list[tuple[str, int]]:
        """Posts due reminders and lapse notes; returns [("reminded"|"lapsed", entry id)]."""
        now = self.clock()
        before = parse_duration(self.config.policy.remind_before)
        done: list[tuple[str, int]] = []
        for entry in self.store.active_containments():
            if entry.reminded or entry.expires_at - now > before:
                continue
            # an entry set for less than the reminder span was announced with its end time
            if entry.expires_at - entry.set_at <= before:
                continue
            if self.store.mark_containment_reminded(entry.id):
                await self._post(entry, reminder(entry, now))
                done.append(("reminded", entry.id))
        for entry in self.store.lapsed_containments(now - LAPSE_NOTES_SINCE):
            if self.store.mark_containment_lapse_noted(entry.id):
                await self._post(entry, lapsed(entry))
                done.append(("lapsed", entry.id))
        return done

    async def _post(self, entry: Containment, reply: ChatReply) -> None:
        own = bool(entry.channel) and entry.channel != SHELL_CHANNEL
        channel = entry.channel if own else self.channel
        if not channel:
            log.info("no channel for a containment note", extra={"entry": entry.id})
            return
        thread = entry.thread_ts if own and entry.thread_ts else None
        try:
            await self.poster.post(channel, reply, thread_ts=thread)
        except Exception:
            log.exception("could not post a containment note", extra={"entry": entry.id})


def reminder(entry: Containment, now: datetime) -> ChatReply:
    renew = f"/contain {entry.action} {entry.subject_kind} {entry.subject}"
    if entry.action == "throttle":
        renew += f" {entry.limit_per_hour}/h"
    return plain_reply(
        f":alarm_clock: The {entry.action} on {subject_text(entry)} (entry #{entry.id}) lapses "
        f"at {until(entry, now)}. To keep it: `{escape(renew)} 24h <reason>`; to end it now: "
        f"`{escape(release_hint(entry))}`."
    )


def lapsed(entry: Containment) -> ChatReply:
    return plain_reply(
        f":hourglass: The {entry.action} on {subject_text(entry)} (entry #{entry.id}) lapsed at "
        f"{until(entry, entry.expires_at)}: its mail is treated normally again."
    )
