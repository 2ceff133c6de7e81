"""Live policy alarms → chat alerts: poll the store every second, claim each alarm, post it.

The policy service (possibly another process, on the MTA) writes alarms with
Store.record_policy_alarm; this task turns each into an alert in the digest channel with the
containment buttons. The poll and the claim run in a worker thread on their own connection, so a
busy store never stalls the event loop; the claim is compare-and-set, so with two bots on one store
each alarm is posted once. An optional per-rule automatic action ([policy] auto_action) contains
the subject at once and says so in the alert's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.config import Config
from bot.containment import active_for, contain, limits_of
from bot.monitor.alerts import Alerter, AlertEvent
from bot.poster import ChatPoster
from bot.render.containment import chat_reply
from bot.render.policy_alarm import alarm_reply, containable, follow_up_text, summary
from bot.render.reply import ChatReply, escape, sections
from bot.store import AlertRecord, Store, utc_now
from handlers.policy.containment import ContainmentError, ContainRequest, Subject, parse_request
from handlers.policy.model import PolicyAlarm

log = logging.getLogger("relaywatch.alarms")

AUTO_SET_BY = "relaywatch"
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Claimed:
    alarm_id: int
    alarm: PolicyAlarm


def claim_unposted(path: Path, clock: Callable[[], datetime]) -> list[Claimed]:
    """Runs in a worker thread: its own connection, closed before it returns."""
    with Store(path, clock=clock) as store:
        return claim_from(store)


def claim_from(store: Store, limit: int = 100) -> list[Claimed]:
    claimed = []
    for alarm_id, alarm in store.unposted_policy_alarms(limit):
        if store.claim_policy_alarm(alarm_id):  # compare-and-set: one poster wins
            claimed.append(Claimed(alarm_id, alarm))
    return claimed


class AlarmPoster:
    def __init__(
        self,
        config: Config,
        store: Store,
        poster: ChatPoster,
        channel: str,
        clock: Callable[[], datetime] = utc_now,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.config = config
        self.store = store
        self.alerter = Alerter(store, poster, channel, config.policy.throttle_rate)
        self.poster = poster
        self.clock = clock
        self.interval = interval

    async def run(self) -> None:
        """Polls until cancelled; a failed round is logged and the next one tries again."""
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("posting policy alarms failed; retrying")
            await asyncio.sleep(self.interval)

    async def poll_once(self) -> list[AlertEvent]:
        if str(self.store.path) == ":memory:":  # a private database: no other connection sees it
            claimed = claim_from(self.store)
        else:
            claimed = await asyncio.to_thread(claim_unposted, self.store.path, self.store.clock)
        events: list[AlertEvent] = []
        for item in claimed:
            events += await self.post(item.alarm)
        return events

    async def post(self, alarm: PolicyAlarm) -> list[AlertEvent]:
        rate = self.config.policy.throttle_rate

        def opening(alert: AlertRecord):
            return alarm_reply(alarm, alert.id, rate)

        events = await self.alerter.on_event(
            alarm.key, "policy", summary(alarm), opening, follow_up_text(alarm)
        )
        for event in events:
            if event.action == "opened" and event.ts:
                await self._auto_action(alarm, event)
        return events

    async def _auto_action(self, alarm: PolicyAlarm, event: AlertEvent) -> None:
        action = self.config.policy.auto_action.get(alarm.rule)
        subject = containable(alarm)
        if not action or subject is None:
            return
        if active_for(self.store, Subject(*subject)):
            # an admin decided already; an automatic entry must never replace their decision
            return
        words = [action, *subject]
        if action == "throttle":
            words.append(self.config.policy.throttle_rate)
        words += ["auto:", summary(alarm)]
        channel = self.alerter.channel
        try:
            request = parse_request(" ".join(words).split(), limits_of(self.config))
        except ContainmentError as exc:  # config validated the action; the subject was checked
            log.warning("automatic containment refused", extra={"reason": str(exc)})
            return
        if not isinstance(request, ContainRequest):
            return
        applied = contain(self.store, request, AUTO_SET_BY, channel, event.ts, self.clock)
        self.store.audit(
            AUTO_SET_BY, "contain", " ".join(words), True, f"auto_action for {alarm.rule}", channel
        )
        done = chat_reply(applied, self.clock(), self.config.policy.listen)
        note = (
            f":robot_face: automatic action (policy.auto_action.{escape(alarm.rule)} = "
            f'"{escape(action)}"):'
        )
        reply = ChatReply(text=f"{note}\n{done.text}", blocks=[*sections(note), *done.blocks])
        try:
            await self.poster.post(channel, reply, thread_ts=event.ts)
        except Exception:
            log.exception("could not post the automatic action", extra={"alarm": alarm.key})
