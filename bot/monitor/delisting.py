"""Delisting cases kept in step with the blocklist checks, rechecked on their own schedule, and
narrated in each listing's alert thread ("removed after 26 h", overdue, relisted)."""

from __future__ import annotations

import copy
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from bot.config import Config
from bot.digest.facts import blacklist_facts
from bot.monitor.alerts import blacklist_key
from bot.poster import ChatPoster
from bot.render.reply import ChatReply, escape, plain_reply
from bot.store import CheckRecord, Store, utc_now
from handlers.delisting import CaseEvent, DelistCase, RemovalPolicy, observe

log = logging.getLogger("relaywatch.delisting")

# (subject, zone) → listed True / not listed False / could not tell None
ListingLookup = Callable[[str, str], Awaitable[bool | None]]

_EVENT_EMOJI = {
    "removed": ":white_check_mark:",
    "overdue": ":hourglass:",
    "relisted": ":rotating_light:",
}


def removal_policies(config: Config) -> dict[str, RemovalPolicy]:
    from bot.checks.blacklist import lists_for

    return {
        item.zone: RemovalPolicy(
            item.removal, item.expires_hours, item.paid_express, item.delist_url
        )
        for item in lists_for(config)
    }


def engine_lookup(config: Config) -> ListingLookup:
    """Asks one list about one address, through the blocklist engine with every other list off."""

    async def lookup(subject: str, zone: str) -> bool | None:
        from bot.checks.blacklist import lists_for, run_blacklist

        narrowed = copy.deepcopy(config)
        narrowed.blacklist.disabled_zones = [
            item.zone for item in lists_for(config) if item.zone != zone
        ]
        outcome = await run_blacklist(narrowed, [subject])
        record = CheckRecord(0, "blacklist", subject, "", "", outcome.status, outcome.data)
        facts = blacklist_facts(record)
        if (subject, zone) in facts.keys:
            return True
        if facts.is_unknown((subject, zone)) or not facts.has_answers:
            return None
        return False

    return lookup


def _covers(checked: str, subject: str) -> bool:
    """Does a check of `checked` (an address, a range, a name) say something about `subject`?"""
    if checked == subject:
        return True
    try:
        return ipaddress.ip_address(subject) in ipaddress.ip_network(checked, strict=False)
    except ValueError:
        return False


class CaseKeeper:
    def __init__(
        self,
        config: Config,
        store: Store,
        poster: ChatPoster | None = None,
        channel: str = "",
        lookup: ListingLookup | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self.poster = poster
        self.channel = channel
        self.lookup = lookup or engine_lookup(config)
        self.clock = clock
        self._policies: dict[str, RemovalPolicy] | None = None

    def policy(self, zone: str) -> RemovalPolicy:
        if self._policies is None:
            self._policies = removal_policies(self.config)
        return self._policies.get(zone, RemovalPolicy())

    async def sync(self, record: CheckRecord) -> list[CaseEvent]:
        """After a blocklist check: open cases for new listings, close the ones it saw gone."""
        facts = blacklist_facts(record)
        if not facts.has_answers:
            return []
        alert = self.store.open_alert(blacklist_key(record.subject))
        events: list[CaseEvent] = []
        now = self.clock()
        for listing in facts.listings:
            case = self.store.delist_case(listing.target, listing.zone)
            if case is None:
                self.store.open_delist_case(
                    listing.target,
                    listing.zone,
                    listing.codes,
                    listing.txt,
                    alert.id if alert else None,
                )
            elif case.state == "removed":
                events.extend(await self._step(case, True, now, alert.id if alert else None))
        for case in self.store.delist_cases("listed"):
            key = (case.subject, case.zone)
            if (
                key in facts.keys
                or facts.is_unknown(key)
                or not _covers(record.subject, case.subject)
            ):
                continue
            # the listing alert's own follow-up says "removed from …, after 26 h" in the thread
            events.extend(await self._step(case, False, now, announce=False))
        return events

    async def recheck_due(self) -> list[CaseEvent]:
        events: list[CaseEvent] = []
        now = self.clock()
        for case in self.store.due_delist_cases(now):
            try:
                listed = await self.lookup(case.subject, case.zone)
            except Exception:
                log.exception("delisting recheck failed", extra={"zone": case.zone})
                listed = None
            events.extend(await self._step(case, listed, now))
        return events

    async def _step(
        self,
        case: DelistCase,
        listed: bool | None,
        now: datetime,
        alert_id: int | None = None,
        announce: bool = True,
    ) -> list[CaseEvent]:
        step = observe(case, listed, now, self.policy(case.zone))
        after = step.case
        if alert_id is not None and step.events and step.events[0].kind == "relisted":
            after = replace(after, alert_id=alert_id)  # the new alert's thread tells the story
        if not self.store.save_delist_case(case, after):
            return []  # another process took this step
        for event in step.events if announce else ():
            await self._post(after, event)
        return list(step.events)

    async def _post(self, case: DelistCase, event: CaseEvent) -> None:
        if self.poster is None:
            return
        alert = self.store.alert(case.alert_id) if case.alert_id is not None else None
        channel = (alert.channel if alert else "") or self.channel
        if not channel:
            return
        text = f"{_EVENT_EMOJI.get(event.kind, '')} {escape(event.text)}".strip()
        try:
            await self.poster.post(channel, plain_reply(text), alert.thread_ts if alert else None)
        except Exception:
            log.exception("delisting note could not be posted", extra={"zone": case.zone})


def mark_cases(
    store: Store, config: Config, subject: str, field: str, who: str, user_id: str
) -> ChatReply:
    """What the "Cause fixed" and "Delisting requested" buttons record, and the next step."""
    cases = [c for c in store.delist_cases("listed") if _covers(subject, c.subject)]
    if not cases:
        return plain_reply(
            f"no open listing of {escape(subject)} to record that for", ephemeral=True
        )
    for case in cases:
        store.mark_delist_case(case.id, field, user_id)
    policies = removal_policies(config)
    zones = ", ".join(sorted({c.zone for c in cases}))
    if field == "cause_fixed":
        lines = [f":wrench: {who} marked the cause fixed for {escape(subject)} ({zones})."]
        lines += [
            f"• {escape(c.zone)}: {escape(policies.get(c.zone, RemovalPolicy()).advice())}"
            for c in cases
        ]
        lines.append(
            "Next: request removal where a list asks for it, then press Delisting requested."
        )
    else:
        lines = [
            f":envelope_with_arrow: {who} requested removal of {escape(subject)} from {zones}. "
            "relaywatch re-checks these lists every 30 minutes for two days, then every 6 hours, "
            "and says here when each listing is gone or overdue."
        ]
    return plain_reply("\n".join(lines))
