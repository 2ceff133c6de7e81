"""From per-test outcomes to one verdict per target, with an explanation an admin can act on."""

from __future__ import annotations

import re

from handlers.relay.model import AttemptOutcome, RelayTestResult, Verdict

FIX_HINT = (
    "Refuse relaying for unauthenticated clients (Postfix: smtpd_relay_restrictions = "
    "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination; keep mynetworks to "
    "hosts you control; Exim: relay_from_hosts / hostlist relay_from_hosts)."
)

# Refusal texts that mean "I will not relay for you" even when sent with a 4xx code: Postfix's
# defer_unauth_destination (Debian's default) answers "454 4.7.1 <…>: Relay access denied".
_RELAY_REFUSAL = re.compile(
    r"relay(ing)? (access )?(denied|not permitted|not allowed|prohibited)"
    r"|not permitted to relay|unable to relay|we do not relay|relaying not allowed",
    re.IGNORECASE,
)


def is_relay_refusal(reply: str) -> bool:
    return bool(_RELAY_REFUSAL.search(reply))


_UNDECIDED = {
    AttemptOutcome.TEMPFAIL: "answered with a temporary error (4xx, e.g. greylisting)",
    AttemptOutcome.AUTH_REQUIRED: "demanded authentication first (530)",
    AttemptOutcome.DROPPED: "were cut off when the server dropped the connection",
    AttemptOutcome.TIMEOUT: "got no answer in time (tarpit or stalled server)",
    AttemptOutcome.NOT_RUN: "could not be run",
}


def decide(
    tests: list[RelayTestResult], confirm: bool, tarpit: bool = False
) -> tuple[Verdict, str, list[str]]:
    """(verdict, explanation, evidence test names) for a battery that got at least a session.
    `tarpit`: the engine explains what to do about the delays itself (no generic advice)."""
    plain = [t for t in tests if t.accepted and t.kind == "plain"]
    trick = [t for t in tests if t.accepted and t.kind == "trick"]
    if plain:
        # the spammer's own case makes the clearest example
        plain.sort(key=lambda t: t.name != "external-to-external")
        if not confirm:
            return (
                Verdict.OPEN,
                f"OPEN RELAY: the server accepted an external recipient from an unauthenticated "
                f"external sender in {_count(plain)} ({_names(plain)}), e.g. "
                f"MAIL FROM:{plain[0].mail_from} → RCPT TO:{plain[0].rcpt_to} answered "
                f"'{plain[0].reply}'. Spammers can send through it. {FIX_HINT} (Probed at RCPT "
                "only, --no-data: a server that refuses at DATA looks the same, so this verdict "
                "may overstate; run without --no-data to tell.)",
                [t.name for t in plain],
            )
        confirmed = [t for t in plain if t.data_accepted or t.data_reply is None]
        if confirmed:
            went_to_data = [t for t in confirmed if t.data_accepted]
            how = (
                f"and then invited the message body (354 to DATA) in {_names(went_to_data)}"
                if went_to_data
                else "(DATA could not be tried)"
            )
            return (
                Verdict.OPEN,
                f"OPEN RELAY: the server accepted an external recipient from an unauthenticated "
                f"external sender in {_count(confirmed)} ({_names(confirmed)}) {how}; "
                f"relaywatch hung up before the final dot, so nothing was queued. {FIX_HINT}",
                [t.name for t in confirmed],
            )
        return (
            Verdict.SUSPECT,
            f"The server accepted external recipients at RCPT in {_count(plain)} "
            f"({_names(plain)}) but refused DATA ('{plain[0].data_reply}'). It probably rejects "
            "relayed mail late (after RCPT) - fine for relaying, but it still tells spammers "
            "'yes' at RCPT and wastes their and your resources. Make the RCPT stage refuse: "
            + FIX_HINT,
            [t.name for t in plain],
        )
    if trick:
        forms = ", ".join(f"{t.name} (RCPT TO:{t.rcpt_to})" for t in trick)
        return (
            Verdict.SUSPECT,
            f"Plain external recipients were refused, but the server accepted unusual address "
            f"forms: {forms}. Many servers treat such an address as a local mailbox (the message "
            "would bounce or land locally); others rewrite it and relay it outward. Look at what "
            "your server does with it (its log for this test, or `postmap -q`/`sendmail -bv`), "
            "and refuse these forms at RCPT (Postfix: allow_percent_hack = no, "
            "swap_bangpath = no, strict_rfc821_envelopes = yes).",
            [t.name for t in trick],
        )
    undecided = [t for t in tests if t.outcome in _UNDECIDED]
    if undecided or not tests:
        parts = []
        for outcome, phrase in _UNDECIDED.items():
            matching = [t for t in undecided if t.outcome is outcome]
            if matching:
                parts.append(f"{_count(matching)} {phrase} ({_names(matching, 4)})")
        refused = [t for t in tests if t.outcome is AttemptOutcome.REFUSED]
        refused_text = f"; {_count(refused)} refused" if refused else ""
        advice = "" if tarpit else " " + _undecided_advice(undecided)
        return (
            Verdict.INCONCLUSIVE,
            f"No relay attempt was accepted, but not all were refused either: "
            f"{'; '.join(parts)}{refused_text}.{advice}",
            [t.name for t in undecided],
        )
    deferred = [t for t in tests if t.reply.startswith("4")]
    note = (
        f" {_count(deferred)} were refused with a temporary code but said relaying is denied: "
        "counted as refused. Postfix answers 454 4.7.1 this way for two reasons: "
        "defer_unauth_destination (Debian's default safety net; once you trust your "
        "configuration, reject_unauth_destination gives a permanent 5xx), or soft_bounce = yes "
        "(which turns every reject into a 4xx; check with postconf soft_bounce)."
        if deferred
        else ""
    )
    return (
        Verdict.CLOSED,
        f"Closed: every one of the {len(tests)} relay attempts was refused "
        f"(e.g. '{tests[0].reply}').{note}",
        [],
    )


def _undecided_advice(undecided: list[RelayTestResult]) -> str:
    outcomes = {t.outcome for t in undecided}
    if outcomes == {AttemptOutcome.AUTH_REQUIRED}:
        return (
            "The server requires authentication before it takes mail from this client (a "
            "submission port behaves this way): strangers cannot relay without a password, but "
            "the battery itself could not run. Test the port that receives internet mail (25)."
        )
    if AttemptOutcome.TEMPFAIL in outcomes:
        return (
            "Greylisting or rate limits answer strangers with 4xx; re-run in a few minutes "
            "(greylisting usually lets a retry through) to get a decision."
        )
    if AttemptOutcome.TIMEOUT in outcomes:
        return (
            "The server stopped answering (a tarpit, or a stalled filter). A tarpit delays "
            "strangers on purpose, so waiting longer rarely helps: test from an address it does "
            "not delay, or read its relay rules directly (postconf smtpd_relay_restrictions)."
        )
    return "Re-run; if it keeps happening, look at the server's log for these sessions."


def _count(tests: list[RelayTestResult]) -> str:
    return f"{len(tests)} test" + ("" if len(tests) == 1 else "s")


def _names(tests: list[RelayTestResult], limit: int = 12) -> str:
    names = [t.name for t in tests[:limit]]
    more = len(tests) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")
