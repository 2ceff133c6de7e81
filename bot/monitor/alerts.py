"""Change alerts: one alert (a thread) per change, follow-ups in that thread, closed when it clears.

The decision is driven by the alert table, not by memory: "listed now and no open alert" opens one,
"open alert and something changed since it was last updated" replies in its thread. The store's
one-open-alert-per-subject index makes opening exactly-once even with two bot processes, and a
guarded update (below) makes follow-ups exactly-once too. A failed check changes nothing: we do
not know more than before.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.digest.facts import (
    RELAY_ALERT_VERDICTS,
    BlacklistFacts,
    DomainFacts,
    ListingFact,
    SuspectFact,
    blacklist_facts,
    blacklist_usable,
    domain_facts,
    relay_facts,
    suspect_facts,
)
from bot.poster import ChatPoster
from bot.render.containment import suspect_buttons
from bot.render.reply import ChatReply, buttons, context, escape, mention, plain_reply, sections
from bot.store import AlertRecord, CheckRecord, PendingPost, Store, iso
from handlers.delisting.cases import hours as listed_for
from handlers.numbers import NumberError, parse_count

log = logging.getLogger("relaywatch.alerts")

# a suspect that no summary has flagged for this long is considered quiet and its alert closes
SUSPECT_QUIET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class AlertEvent:
    alert_id: int
    subject_key: str
    action: Literal["opened", "followed_up", "closed"]
    text: str
    ts: str = ""  # the posted message's ts ("" when it could not be posted)


def blacklist_key(subject: str) -> str:
    return f"blacklist:{subject}"


def relay_key(subject: str) -> str:
    return f"relay:{subject}"


def domain_key(subject: str) -> str:
    return f"domain:{subject}"


def suspect_key(suspect: SuspectFact) -> str:
    return f"suspect:{suspect.kind}:{suspect.subject}"


class Alerter:
    """Posts alerts and their follow-ups to one channel through any ChatPoster."""

    def __init__(
        self,
        store: Store,
        poster: ChatPoster,
        channel: str,
        throttle_rate: str = "20/h",
        claimant: str | None = None,
    ) -> None:
        self.store = store
        self.poster = poster
        self.channel = channel
        self.throttle_rate = throttle_rate  # what a suspect alert's Throttle button sets
        # who holds a posting claim: unique per Alerter, so two in one process do not share one
        self.claimant = claimant or poster_identity()

    # -- blocklists -------------------------------------------------------------------------

    async def on_blacklist(self, record: CheckRecord) -> list[AlertEvent]:
        # an incomplete run still counts for the lists that answered; one where none did, not
        if not blacklist_usable(record):
            return []
        key = blacklist_key(record.subject)
        facts = blacklist_facts(record)
        alert = self.store.open_alert(key)
        if alert is None:
            if not facts.listings:
                return []
            return await self._open(key, "blacklist", record, _listing_opening(record, facts))
        if not alert.thread_ts:
            if not facts.listings:  # cleared before its first message ever got out
                summary = _listing_summary(record.subject, facts)
                return await self._follow_up(alert, "", summary, True)
            return await self._repost(alert, record, _listing_opening(record, facts))
        reported = self._reported(alert, record)
        before = blacklist_facts(reported).keys if reported else frozenset()
        added = [x for x in facts.listings if x.key not in before]
        removed = sorted(facts.removed_since(before))
        unknown = sorted(k for k in before - facts.keys if facts.is_unknown(k))
        if not added and not removed:
            return []
        if not facts.listings and not unknown:
            text = (
                f":white_check_mark: `{escape(record.subject)}` is no longer listed on any "
                f"checked list ({facts.lists_answered} of {facts.lists_total} answered)"
                f"{self._took(removed)}. Closing this alert."
            )
            return await self._follow_up(alert, text, _listing_summary(record.subject, facts), True)
        parts = []
        if added:
            parts.append("now also listed on " + ", ".join(_zone(x) for x in added))
        if removed:
            parts.append(
                "removed from "
                + ", ".join(f"{z} ({escape(t)}{self._after(t, z)})" for t, z in removed)
            )
        text = f":arrows_counterclockwise: `{escape(record.subject)}` " + "; ".join(parts) + "."
        if facts.listings:
            still = len({x.zone for x in facts.listings})
            text += f" Still listed on {still} list{'s' if still != 1 else ''}."
        if unknown:
            text += " Not known this time (list did not answer): " + ", ".join(
                z for _, z in unknown
            )
        return await self._follow_up(alert, text, _listing_summary(record.subject, facts), False)

    def _after(self, target: str, zone: str) -> str:
        """', after 26 h' when the delisting case knows when the listing was first seen."""
        case = self.store.delist_case(target, zone)
        if case is None or case.state != "listed":
            return ""
        return f", after {listed_for(self.store.clock() - case.first_seen)}"

    def _took(self, removed: list[tuple[str, str]]) -> str:
        afters = [self._after(t, z) for t, z in removed]
        return (
            f"; removed from {', '.join(z for _, z in removed)}{afters[0]}"
            if len(removed) == 1 and afters[0]
            else ""
        )

    # -- relay ------------------------------------------------------------------------------

    async def on_relay(self, record: CheckRecord) -> list[AlertEvent]:
        if record.status == "failed":
            return []
        key = relay_key(record.subject)
        facts = relay_facts(record)
        alert = self.store.open_alert(key)
        if alert is None:
            if facts.verdict not in RELAY_ALERT_VERDICTS:
                return []
            return await self._open(key, "relay", record, _relay_opening(record, facts.verdict))
        if not alert.thread_ts:
            if facts.verdict not in RELAY_ALERT_VERDICTS:
                summary = f"{record.subject} relay verdict {facts.verdict}"
                return await self._follow_up(alert, "", summary, facts.verdict == "closed")
            return await self._repost(alert, record, _relay_opening(record, facts.verdict))
        reported = self._reported(alert, record)
        before = relay_facts(reported).verdict if reported else ""
        if facts.verdict == before or not facts.verdict:
            return []
        summary = f"{record.subject} relay verdict {facts.verdict}"
        if facts.verdict == "closed":
            text = (
                f":white_check_mark: `{escape(record.subject)}` now refuses to relay "
                f"(verdict closed, was {before or 'unknown'}). Closing this alert."
            )
            return await self._follow_up(alert, text, summary, True)
        text = (
            f":arrows_counterclockwise: `{escape(record.subject)}` relay verdict is now "
            f"*{facts.verdict}* (was {before or 'unknown'})."
        )
        if facts.verdict in ("inconclusive", "unreachable"):
            text += " The alert stays open until a test shows the relay closed."
        return await self._follow_up(alert, text, summary, False)

    # -- sending-domain authentication --------------------------------------------------------

    async def on_domain(self, record: CheckRecord) -> list[AlertEvent]:
        facts = domain_facts(record)
        if not facts.status:
            return []  # the run produced nothing for this domain: we know no more than before
        key = domain_key(record.subject)
        fails = facts.fails
        alert = self.store.open_alert(key)
        if alert is None:
            if not fails:
                return []
            return await self._open(key, "domain", record, _domain_opening(record, facts))
        summary = _domain_summary(record.subject, facts)
        if not alert.thread_ts:
            if not fails and not facts.unknown:
                return await self._follow_up(alert, "", summary, True)
            if fails:
                return await self._repost(alert, record, _domain_opening(record, facts))
            return []
        reported = self._reported(alert, record)
        before = domain_facts(reported).fails if reported else {}
        added = [f for k, f in fails.items() if k not in before]
        fixed = [f for k, f in before.items() if k not in fails and k not in facts.unknown]
        if not added and not fixed:
            return []
        subject = escape(record.subject)
        if not fails and not (set(before) & facts.unknown):
            text = (
                f":white_check_mark: `{subject}` passes every authentication check that failed "
                "before. Closing this alert."
            )
            return await self._follow_up(alert, text, summary, True)
        parts = []
        if added:
            parts.append("now failing: " + "; ".join(escape(_finding(f)) for f in added))
        if fixed:
            parts.append("fixed: " + ", ".join(escape(f"{f.id} {f.subject}") for f in fixed))
        text = f":arrows_counterclockwise: `{subject}` " + " — ".join(parts) + "."
        if fails:
            text += f" Still failing: {len(fails)}."
        return await self._follow_up(alert, text, summary, False)

    # -- suspects ---------------------------------------------------------------------------

    async def on_mailsummary(self, record: CheckRecord, now: datetime) -> list[AlertEvent]:
        events = await self._on_log_silence(record)
        if record.status == "failed":
            return events
        current = {suspect_key(s): s for s in suspect_facts(record) if not s.is_attack}
        for key, suspect in current.items():
            alert = self.store.open_alert(key)
            if alert is None:
                opening = _suspect_opening(suspect, self.throttle_rate)
                events += await self._open(key, "suspect", record, opening)
            elif not alert.thread_ts:
                opening = _suspect_opening(suspect, self.throttle_rate)
                events += await self._repost(alert, record, opening)
        for alert in self.store.alerts("open"):
            if alert.kind != "suspect" or alert.subject_key in current:
                continue
            last_seen = self._suspect_last_seen(alert, record)
            if now - last_seen < SUSPECT_QUIET_AFTER:
                continue
            subject = alert.subject_key.split(":", 2)[-1]
            text = (
                f":white_check_mark: `{escape(subject)}` has not been flagged since "
                f"{iso(last_seen)} (quiet for a day). Closing this alert."
            )
            events += await self._follow_up(alert, text, alert.summary + " (quiet)", True)
        return events

    async def _on_log_silence(self, record: CheckRecord) -> list[AlertEvent]:
        """A log that had mail and now reads none: alert once; close when mail lines return."""
        key = silence_key(record.subject)
        silent = record.status == "failed" and bool(record.result.get("could_not_check"))
        alert = self.store.open_alert(key)
        if silent:
            if alert is not None:
                if not alert.thread_ts:
                    return await self._repost(alert, record, _silence_opening(record, None))
                return []
            last = self._last_traffic(record)
            if last is None:
                return []  # never had traffic: the digest says so; nothing went silent
            return await self._open(key, "logging", record, _silence_opening(record, last))
        if alert is None or record.status == "failed":
            return []  # a run that failed for another reason tells us nothing new
        lines = record.result.get("mail_lines", record.result.get("lines", 0))
        text = (
            f":white_check_mark: mail log lines are back for `{escape(record.subject)}` "
            f"({lines:,} read). Closing this alert."
        )
        return await self._follow_up(alert, text, alert.summary + " (back)", True)

    def _last_traffic(self, record: CheckRecord) -> CheckRecord | None:
        """The newest earlier summary of this subject that read mail lines."""
        for earlier in self.store.checks("mailsummary", record.subject, limit=500):
            if earlier.id == record.id or earlier.status == "failed":
                continue
            lines = earlier.result.get("mail_lines", earlier.result.get("lines", 0))
            if isinstance(lines, int) and lines > 0:
                return earlier
        return None

    def _suspect_last_seen(self, alert: AlertRecord, record: CheckRecord) -> datetime:
        last = datetime.fromisoformat(alert.opened_at)
        since = iso(last)
        for earlier in self.store.checks("mailsummary", record.subject, limit=500):
            if earlier.finished_at < since:
                break
            if earlier.status == "failed":
                continue
            if any(suspect_key(s) == alert.subject_key for s in suspect_facts(earlier)):
                return max(last, datetime.fromisoformat(earlier.finished_at))
        return last

    # -- alerts that are not about a stored check (live policy alarms) ----------------------

    async def on_event(
        self,
        key: str,
        kind: str,
        summary: str,
        opening: Callable[[AlertRecord], ChatReply],
        follow_up: str,
    ) -> list[AlertEvent]:
        """Opens the alert for `key`, or follows up in its thread when it is already open.

        `opening` builds the first message once the alert exists (its buttons carry the id).
        """
        alert = self.store.open_alert(key)
        if alert is None:
            alert = self.store.create_alert(key, kind, summary, channel=self.channel)
            if alert is None:  # another process opened it a moment ago; it posts the message
                return []
            return await self._post_message(alert, opening(alert))
        if not alert.thread_ts:
            return await self._post_message(alert, opening(alert))
        return await self._follow_up(alert, follow_up, summary, False)

    # -- posting ----------------------------------------------------------------------------

    def _reported(self, alert: AlertRecord, record: CheckRecord) -> CheckRecord | None:
        """The check the alert's last message described: the newest usable one before it."""
        usable = blacklist_usable if record.kind == "blacklist" else _complete
        for earlier in self.store.checks(record.kind, record.subject, limit=500):
            if earlier.id == record.id or not usable(earlier):
                continue
            if earlier.finished_at <= alert.updated_at:
                return earlier
        return None

    async def _open(
        self, key: str, kind: str, record: CheckRecord, opening: tuple[str, ChatReply]
    ) -> list[AlertEvent]:
        summary, reply = opening
        alert = self.store.create_alert(key, kind, summary, channel=self.channel)
        if alert is None:  # another process opened it a moment ago; it posts the message
            return []
        return await self._post_opening(alert, record, reply)

    async def _repost(
        self, alert: AlertRecord, record: CheckRecord, opening: tuple[str, ChatReply]
    ) -> list[AlertEvent]:
        """An alert whose first message never made it out (Slack was down): post it now."""
        return await self._post_opening(alert, record, opening[1])

    async def _post_opening(
        self, alert: AlertRecord, record: CheckRecord, reply: ChatReply
    ) -> list[AlertEvent]:
        specs = [
            ("acknowledge", "Acknowledge", str(alert.id)),
            ("show_details", "Show details", str(record.id)),
            ("rerun", "Re-run", _rerun_command(record)),
        ]
        if record.kind == "blacklist":
            # delisting is followed in this thread: who fixed the cause, who asked for removal
            specs += [
                ("delist_cause_fixed", "Cause fixed", record.subject),
                ("delist_requested", "Delisting requested", record.subject),
            ]
        reply.blocks.append(buttons(*specs))
        return await self._post_message(alert, reply)

    async def _post_message(self, alert: AlertRecord, reply: ChatReply) -> list[AlertEvent]:
        # The alert row says a message is due; the claim says who sends it. Without the claim a
        # second process that sees the alert before its thread ts is stored would post it again.
        key = opening_claim_key(alert.id)
        if not self.store.claim_post(key, self.claimant):
            return []  # another process is posting it (or did); a dead one's lease runs out
        try:
            ts = await self.poster.post(self.channel, reply)
        except Exception:
            log.exception("could not post alert", extra={"alert": alert.subject_key})
            self.store.release_post(key, self.claimant)  # the next run tries again
            return [AlertEvent(alert.id, alert.subject_key, "opened", reply.text)]
        self.store.set_alert_thread(alert.id, self.channel, ts)
        self.store.finish_post(key, self.claimant, ts)
        return [AlertEvent(alert.id, alert.subject_key, "opened", reply.text, ts)]

    async def _follow_up(
        self, alert: AlertRecord, text: str, summary: str, close: bool
    ) -> list[AlertEvent]:
        action: Literal["followed_up", "closed"] = "closed" if close else "followed_up"
        if not alert.thread_ts:
            # its opening message never got out, so there is no thread to answer in; the
            # change is recorded and the next digest shows it
            if not self.store.update_alert(alert, summary, close):
                return []  # another process handled this change already
            return [AlertEvent(alert.id, alert.subject_key, action, text)]
        channel = alert.channel or self.channel
        claim = PendingPost(
            follow_up_claim_key(alert.id),
            self.claimant,
            channel=channel,
            thread_ts=alert.thread_ts,
            text=text,
        )
        if not self.store.update_alert(alert, summary, close, follow_up=claim):
            return []  # another process handled this change already
        ts = await self._post_claimed(claim.claim_key, channel, alert.thread_ts, text)
        return [AlertEvent(alert.id, alert.subject_key, action, text, ts)]

    async def _post_claimed(self, key: str, channel: str, thread_ts: str, text: str) -> str:
        """Posts a follow-up this Alerter holds the claim for; "" when it could not."""
        try:
            ts = await self.poster.post(channel, plain_reply(text), thread_ts)
        except Exception:
            log.exception("could not post alert follow-up", extra={"claim": key})
            self.store.release_post(key, self.claimant)  # resume_abandoned tries again
            return ""
        self.store.finish_post(key, self.claimant, ts)
        return ts

    async def resume_abandoned(self) -> list[str]:
        """Posts follow-ups whose poster died (or failed) before posting them; their claim keys.

        Openings need no such sweep: an alert without a thread ts is posted again by the next
        check of its subject, under the same claim.
        """
        done = []
        for claim in self.store.abandoned_posts(ALERT_CLAIMS):
            if not claim.text or not claim.thread_ts:
                continue
            if not self.store.claim_post(claim.claim_key, self.claimant):
                continue  # another process took it over first
            if await self._post_claimed(
                claim.claim_key, claim.channel, claim.thread_ts, claim.text
            ):
                done.append(claim.claim_key)
        return done


ALERT_CLAIMS = "alert:"


def opening_claim_key(alert_id: int) -> str:
    return f"{ALERT_CLAIMS}{alert_id}:opening"


def follow_up_claim_key(alert_id: int) -> str:
    # one claim per won compare-and-set, so a random part is unique enough and never reused
    return f"{ALERT_CLAIMS}{alert_id}:follow-up:{uuid.uuid4().hex}"


def poster_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _complete(record: CheckRecord) -> bool:
    return record.status != "failed"


def acknowledge(store: Store, alert_id: str | int, user_id: str) -> ChatReply:
    """What the Acknowledge button does: record who and when; the reply goes in the thread."""
    try:
        number = parse_count(str(alert_id), "an alert id")
    except NumberError:
        return plain_reply(escape(f"not an alert id: {alert_id!r}"), ephemeral=True)
    if not store.acknowledge_alert(number, user_id):
        return plain_reply(f"alert #{number} does not exist (any more)", ephemeral=True)
    return plain_reply(
        f":eyes: acknowledged by {mention(user_id)} at {store.now()} — the next digest shows it."
    )


def _listing_summary(subject: str, facts: BlacklistFacts) -> str:
    zones = ", ".join(sorted({x.zone for x in facts.listings})) or "no list"
    return f"{subject} listed on {zones}"


def _zone(listing: ListingFact) -> str:
    meaning = "; ".join(listing.meanings) or ", ".join(listing.codes)
    target = f" as {listing.target}" if listing.target else ""
    return f"{listing.zone}{target}" + (f" ({meaning})" if meaning else "")


def _listing_opening(record: CheckRecord, facts: BlacklistFacts) -> tuple[str, ChatReply]:
    # one line per list, not per (address, list) pair: a watched range can have hundreds of
    # listed addresses on a handful of lists, and the count is of lists
    by_zone: dict[str, list[ListingFact]] = {}
    for listing in facts.listings:
        by_zone.setdefault(listing.zone, []).append(listing)
    lines = []
    for zone, listings in by_zone.items():
        first = listings[0]
        meaning = "; ".join(first.meanings) or ", ".join(first.codes)
        targets = sorted({x.target for x in listings if x.target})
        line = f"• {escape(zone)}" + (f" ({escape(meaning)})" if meaning else "")
        if len(targets) == 1:
            line += f" as {escape(targets[0])}"
        elif targets:
            shown = ", ".join(escape(t) for t in targets[:5])
            more = f" and {len(targets) - 5} more" if len(targets) > 5 else ""
            line += f": {len(targets)} addresses ({shown}{more})"
        if first.severity:
            line += f" [{escape(first.severity)}]"
        if first.delist_url:
            line += f" — delist: {escape(first.delist_url)}"
        lines.append(line)
    addresses = {x.target for x in facts.listings if x.target}
    head = (
        f":rotating_light: `{escape(record.subject)}` is listed on {len(by_zone)} "
        f"blocklist{'s' if len(by_zone) != 1 else ''}"
        + (f" ({len(addresses)} addresses)" if len(addresses) > 1 else "")
    )
    text = head + "\n" + "\n".join(lines)
    reply = ChatReply(
        text=text,
        blocks=[
            *sections(text),
            context(
                "Receivers that use these lists reject or junk mail from this address. Fix the "
                "cause (open relay, compromised account or host), then request delisting. "
                "Follow-ups land in this thread."
            ),
        ],
    )
    return _listing_summary(record.subject, facts), reply


def _finding(finding) -> str:  # a DomainFinding
    return f"{finding.id} {finding.subject}: {finding.summary}"


def _domain_summary(subject: str, facts: DomainFacts) -> str:
    fails = sorted({f.id for f in facts.fails.values()})
    return f"{subject} fails {', '.join(fails)}" if fails else f"{subject} authentication passes"


def _domain_opening(record: CheckRecord, facts: DomainFacts) -> tuple[str, ChatReply]:
    fails = list(facts.fails.values())
    head = (
        f":rotating_light: `{escape(record.subject)}` fails {len(fails)} sending-domain "
        f"check{'s' if len(fails) != 1 else ''} (SPF/DKIM/DMARC/reverse DNS)"
    )
    lines = [f"• {escape(_finding(f))}" for f in fails[:10]]
    text = head + "\n" + "\n".join(lines)
    fixes = "\n\n".join(f"{f.id} {f.subject}:\n{f.fix}" for f in fails if f.fix)
    thread = [plain_reply("Fixes:\n```" + escape(fixes) + "```")] if fixes else []
    reply = ChatReply(
        text=text,
        blocks=[
            *sections(text),
            context(
                "Gmail and Yahoo (2024) and Microsoft (2025) junk or reject mail from domains "
                "that fail these. The records to publish are in the thread; follow-ups land there."
            ),
        ],
        thread=thread,
    )
    return _domain_summary(record.subject, facts), reply


def _relay_opening(record: CheckRecord, verdict: str) -> tuple[str, ChatReply]:
    if verdict == "open":
        head = f":rotating_light: `{escape(record.subject)}` is an *open relay*"
        why = (
            "Strangers can send spam through this server; blocklists will follow. Restrict "
            "relaying (Postfix: smtpd_relay_restrictions / mynetworks) and re-run."
        )
    else:
        head = f":warning: `{escape(record.subject)}` *may* relay (verdict suspect)"
        why = (
            "An external recipient was accepted in a form the server may rewrite, or at RCPT "
            "but refused at DATA. Check the transcript (Show details) and the server's rules."
        )
    accepted = [
        t
        for target in record.result.get("targets") or []
        if isinstance(target, dict)
        for t in target.get("tests") or []
        if isinstance(t, dict) and t.get("accepted")
    ]
    lines = [
        f"• {escape(str(t.get('name', '?')))}: MAIL FROM {escape(str(t.get('mail_from', '')))} "
        f"RCPT TO {escape(str(t.get('rcpt_to', '')))} → {escape(str(t.get('reply', '')))}"
        for t in accepted[:5]
    ]
    text = head + ("\n" + "\n".join(lines) if lines else "")
    reply = ChatReply(text=text, blocks=[*sections(text), context(why)])
    return f"{record.subject} relay verdict {verdict}", reply


def _suspect_opening(suspect: SuspectFact, throttle_rate: str) -> tuple[str, ChatReply]:
    head = (
        f":rotating_light: possible compromise: `{escape(suspect.subject)}` "
        f"({escape(suspect.kind)}, score {suspect.score:g})"
    )
    if suspect.kind == "open_relay":
        head = (
            ":rotating_light: *open relay*: the mail log shows this server relaying mail for "
            f"strangers (score {suspect.score:g})"
        )
    reasons = "\n".join(f"• {escape(r)}" for r in suspect.reasons[:5])
    text = head + ("\n" + reasons if reasons else "")
    if suspect.action:
        text += f"\nNext step: {escape(suspect.action)}"
    evidence = "\n".join(suspect.evidence[:20])
    thread = [plain_reply("Evidence:\n```" + escape(evidence) + "```")] if evidence else []
    reply = ChatReply(
        text=text,
        blocks=[
            *sections(text),
            context(
                "A compromised account or host gets the whole server blocklisted. Check the "
                "evidence in the thread; reset the password or isolate the host."
            ),
        ],
        thread=thread,
    )
    contain = suspect_buttons(
        suspect.subject_type,
        suspect.subject,
        f"from log summary: {suspect.kind} (score {suspect.score:g})",
        throttle_rate,
    )
    if contain is not None:
        reply.blocks.append(contain)
    return f"{suspect.subject} suspected ({suspect.kind})", reply


def silence_key(subject: str) -> str:
    return f"logging:{subject}"


def _silence_opening(record: CheckRecord, last: CheckRecord | None) -> tuple[str, ChatReply]:
    reason = str(record.result.get("could_not_check") or "no mail log lines")
    head = f":warning: the mail log went silent (`{escape(record.subject)}`): {escape(reason)}"
    if last is not None:
        lines = last.result.get("mail_lines", last.result.get("lines", 0))
        head += f"\nThe summary at {last.finished_at} read {lines:,} mail log lines."
    reply = ChatReply(
        text=head,
        blocks=[
            *sections(head),
            context(
                "Without log lines relaywatch cannot see a compromised account or host. Check "
                "that the MTA and syslog (or journald) run and that [logs] paths still point at "
                "the file they write. This alert closes when mail lines come back."
            ),
        ],
    )
    return f"{record.subject} mail log silent", reply


def _rerun_command(record: CheckRecord) -> str:
    if record.kind == "relay":
        return f"relaycheck {record.subject}"
    if record.kind == "mailsummary":
        return f"mailsummary {record.subject}"
    if record.kind == "domain":
        return f"domaincheck {record.subject}"
    return f"{record.kind} {record.subject}"
