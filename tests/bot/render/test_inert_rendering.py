"""Outside text is inert everywhere it is rendered (issues 14 and 16).

Every renderer (relay, blacklist, mail summary, digest, alerts, command replies) is fed documents
whose every outside field holds hostile text: Slack control sequences (<!channel>, <@U…|…>,
<http://evil|…>), evidence with < > &, and terminal escape sequences. Slack must receive no live
mention or link the bot did not make itself, with the evidence's < > & as &lt; &gt; &amp;; the
terminal (CLI text, the shell adapter) must show the original bytes with control characters visible.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli.context import CliContext
from bot.config import Config
from bot.digest import build_digest
from bot.dispatch import Dispatcher, Invocation
from bot.monitor import Monitor
from bot.render import blacklist, mailsummary, relay
from bot.render import digest as render_digest
from bot.render.reply import ChatReply, mention
from bot.render.terminal import visible
from bot.shell import ShellPoster
from bot.slack import SlackPoster, web_client
from bot.slack.flow import with_requester
from bot.slack.poster import block_dicts, fallback_text
from bot.store import Store
from tests.fixtures.digest_history import (
    Clock,
    ScriptedRunner,
    config,
    outcome,
    record,
)
from tests.fixtures.slack_api import SlackStandIn

EVIDENCE = "RCPT TO:<victim@example.org> & MAIL FROM:<>"
EVIDENCE_SLACK = "RCPT TO:&lt;victim@example.org&gt; &amp; MAIL FROM:&lt;&gt;"
ATTACK = (
    "<!channel> <!here|here> <@U0VICTIM|boss> <#C0OPS|ops> <http://evil.example|click me> "
    "<mailto:x@evil.example> &lt;!everyone&gt; \ue000<!channel>\ue001 "
    "\x1b[31mred\x1b[0m \r\x07\u202eevil\x9b "
)
HOSTILE = ATTACK + EVIDENCE
# the only markup the bot means in these replies: who ran a command, and catalog delist links
REQUESTER = "U0ADMIN1"
INTENDED = re.compile(r"^<(?:@U0ADMIN1|#C0OPS|https://[a-z0-9.-]+/delist\|delist)>$")
CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)

PIECES = [
    "<!channel>",
    "<!here>",
    "<!subteam^S1|@ops>",
    "<@U0VICTIM>",
    "<@U0VICTIM|boss>",
    "<#C0OPS>",
    "<http://evil.example|click>",
    "<https://evil.example>",
    "&lt;!channel&gt;",
    "&amp;",
    "<",
    ">",
    "&",
    "|",
    "\ue000",
    "\ue001",
    "\x1b[2J",
    "\r",
    "\x07",
    "\u202e",
    "\x9b",
    "`",
    "*",
    "_",
    ":rotating_light:",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text("ab <>&|!@", max_size=4)), min_size=1, max_size=8
).map("".join)


# -- documents with hostile text in every outside field ------------------------------------------


def relay_doc(h: str) -> dict[str, Any]:
    test = {
        "name": "external-to-external",
        "kind": "plain",
        "mail_from": f"a@b {h}",
        "rcpt_to": f"c@d {h}",
        "accepted": True,
        "outcome": "accepted",
        "reply": f"250 {h}",
        "data_reply": f"354 {h}",
        "commands": [{"command": f"RCPT TO:{h}", "reply": f"250 {h}", "code": 250}],
    }
    refused = {**test, "accepted": False, "outcome": "refused", "reply": f"554 {h}"}
    return {
        "targets": [
            {
                "target": f"mx.example.com {h}",
                "address": "192.0.2.25",
                "verdict": "open",
                "explanation": f"relays: {h}",
                "source_ip": "127.0.0.1",
                "tests": [test, refused],
                "counts": {"accepted": 1, "refused": 1},
                "session_log": [{"command": "EHLO x", "reply": f"250 {h}", "code": 250}],
                "diagnostics": {"banner": f"220 {h}", "esmtp": True, "ehlo_name": h},
                "warnings": [f"warning {h}"],
            }
        ]
    }


def blacklist_doc(h: str) -> dict[str, Any]:
    return {
        "status": "problem",
        "targets": [
            {
                "target": "192.0.2.10",
                "kind": "ip",
                "origin": f"MX of {h}",
                "listed": [
                    {
                        "zone": "zen.example",
                        "codes": ["127.0.0.2"],
                        "meanings": [f"meaning {h}"],
                        "txt": f"TXT {h}",
                        "delist_url": "https://zen.example/delist",
                        "severity": "major",
                    }
                ],
                "failed": [{"zone": "b.example", "reason": "timeout", "detail": f"d {h}"}],
                "unhealthy": [],
                "notes": [{"zone": "c.example", "note": f"note {h}"}],
                "lists_answered": 3,
                "lists_healthy": 3,
                "lists_total": 4,
            }
        ],
        "errors": [f"error {h}"],
        "warnings": [f"warning {h}"],
        "lists": {"healthy": 3, "asked": 4},
    }


def mail_doc(h: str) -> dict[str, Any]:
    return {
        "subject": "24h",
        "lines": 10,
        "totals": {"received": 1, "delivered": 1},
        "suspects": [
            {
                "kind": "sasl_many_ips",
                "subject": f"user {h}",
                "subject_type": "account",
                "score": 9.0,
                "reasons": [f"reason {h}"],
                "action": f"reset {h}",
                "evidence": [f"Nov 28 06:00:00 mx postfix/smtpd[1]: {h}"],
            }
        ],
        "top": {"senders_by_count": [{"messages": 3, "address": f"s {h}"}]},
        "reject_reasons": [{"count": 1, "action": "reject", "stage": "RCPT", "reason": h}],
        "unparsed_lines": 1,
        "unparsed_sample": [h],
        "window": {"first_line": h, "last_line": h},
    }


def chat_replies(h: str) -> list[ChatReply]:
    return [
        relay.chat_reply(outcome("relay", "mx.example.com:25", relay_doc(h)), check_id=1),
        blacklist.chat_reply(outcome("blacklist", "192.0.2.10", blacklist_doc(h)), check_id=2),
        mailsummary.chat_reply(outcome("mailsummary", "24h", mail_doc(h)), check_id=3),
    ]


def terminal_texts(h: str) -> list[str]:
    return [
        relay.text(relay_doc(h)),
        relay.details_text(relay_doc(h)),
        blacklist.text(blacklist_doc(h)),
        blacklist.details_text(blacklist_doc(h)),
        mailsummary.text(mail_doc(h)),
    ]


# -- what Slack receives ---------------------------------------------------------------------------


def sent_strings(payload: Any) -> Iterator[str]:
    """Every text Slack would render in a recorded call's parameters."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in ("text", "title", "alt_text") and isinstance(value, str):
                yield value
            elif key == "blocks" and isinstance(value, str):
                yield from sent_strings(json.loads(value))
            else:
                yield from sent_strings(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from sent_strings(item)


def assert_inert(texts: list[str]) -> None:
    for text in texts:
        for markup in re.findall(r"<[^<>]*>", text):
            assert INTENDED.match(markup), f"live markup {markup!r} in {text!r}"
        assert "\ue000" not in text and "\ue001" not in text


def as_sent(reply: ChatReply) -> list[str]:
    texts = [fallback_text(reply), *sent_strings(block_dicts(reply))]
    for sub in reply.thread:
        texts += as_sent(sub)
    return texts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text)
def test_generated_hostile_text_never_reaches_slack_live(h: str) -> None:
    for reply in chat_replies(h):
        assert_inert(as_sent(with_requester(reply, Invocation("relaycheck", h, REQUESTER, "C1"))))


@settings(max_examples=60, deadline=None)
@given(hostile_text)
def test_generated_hostile_text_reaches_the_terminal_visible(h: str) -> None:
    out = io.StringIO()
    cli = CliContext(config=Config(), stdout=out, stderr=out)
    for text in terminal_texts(h):
        cli.print(text)
    assert not CONTROL.search(out.getvalue().replace("\n", "").replace("\t", ""))


@settings(max_examples=40, deadline=None)
@given(hostile_text)
def test_generated_hostile_text_in_the_shell_adapter_is_exact_and_visible(h: str) -> None:
    import asyncio

    out = io.StringIO()
    poster = ShellPoster(out)

    async def show() -> None:
        for reply in chat_replies(h):
            await poster.post("shell", reply)

    asyncio.run(show())
    shown = out.getvalue()
    assert not CONTROL.search(shown.replace("\n", "").replace("\t", ""))
    # the evidence of a test's RCPT, exactly as the server saw it (controls spelled out)
    expected = visible(f"RCPT TO:{h}".replace("\ue000", "").replace("\ue001", ""))
    if "`" not in h and "*" not in h and "_" not in h and ":" not in h:
        assert expected in shown


# -- through the Slack stand-in and the shell adapter ---------------------------------------------


def slack_poster(slack: SlackStandIn) -> SlackPoster:
    cfg = Config()
    cfg.secrets.slack_bot_token = "xoxb-test"
    cfg.slack.api_url = slack.api_url
    return SlackPoster(web_client(cfg, env={}))


def recorded(slack: SlackStandIn) -> list[str]:
    return [text for call in slack.calls for text in sent_strings(call.params)]


async def test_every_renderer_through_the_slack_stand_in(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    poster = slack_poster(slack)
    inv = Invocation("relaycheck", HOSTILE, REQUESTER, "C0OPS")
    for reply in chat_replies(HOSTILE):
        await poster.post("C0OPS", with_requester(reply, inv))
    # the digest and the alerts, from a store holding hostile results
    clock = Clock()
    with Store(tmp_path / "rw.db", clock=clock) as store:
        store.add_watch("ip", "192.0.2.10")
        store.add_watch("server", "mx.example.com:25")
        record(store, "blacklist", "192.0.2.10", blacklist_doc(HOSTILE))
        record(store, "relay", "mx.example.com:25", relay_doc(HOSTILE))
        record(store, "mailsummary", "24h", mail_doc(HOSTILE))
        alert = store.create_alert("relay:x", "relay", f"summary {HOSTILE}")
        store.acknowledge_alert(alert.id, REQUESTER)
        await poster.post("C0OPS", render_digest.chat_reply(build_digest(store, config(), clock())))
        runner = ScriptedRunner()
        runner.set("blacklist", "192.0.2.10", blacklist_doc(HOSTILE))
        runner.set("relay", "mx.example.com:25", relay_doc(HOSTILE))
        runner.set("mailsummary", "24h", mail_doc(HOSTILE))
        monitor = Monitor(config(), store, runner, poster, "C0OPS", clock)
        for kind in ("blacklist", "relay", "mailsummary"):
            await monitor.run(kind)
        # command replies that echo what a user typed: usage errors, refusals, unknown commands
        cfg = Config()
        cfg.slack.allowed_channels = ["C0OPS"]
        dispatcher = Dispatcher(cfg, store)

        async def progress(text: str) -> None:
            return None

        for inv in (
            Invocation("relaycheck", f"--bogus {HOSTILE}", REQUESTER, "C0OPS"),
            Invocation("blacklist", f"-x {HOSTILE}", REQUESTER, "C0OPS"),
            Invocation(f"nosuch{HOSTILE}", HOSTILE, REQUESTER, "C0OPS"),
            Invocation("mailhealth", f"watch frob {HOSTILE}", REQUESTER, "C0OPS"),
            Invocation("mailhealth", "watch list", REQUESTER, "C0ELSEWHERE"),
        ):
            result = await dispatcher.handle(inv, progress)
            await poster.post("C0OPS", result.reply)
        details = Invocation("show_details", HOSTILE, REQUESTER, "C0OPS")
        await poster.post("C0OPS", (await dispatcher.show_details(details)).reply)
        ack = Invocation("acknowledge", HOSTILE, REQUESTER, "C0OPS")
        await poster.post("C0OPS", (await dispatcher.acknowledge(ack)).reply)
    texts = recorded(slack)
    assert len(slack.of("chat.postMessage")) > 20
    assert_inert(texts)
    joined = "\n".join(texts)
    assert EVIDENCE_SLACK in joined  # the evidence's brackets survive, escaped
    assert "&lt;!channel&gt;" in joined and "&lt;@U0VICTIM|boss&gt;" in joined
    assert "&amp;lt;!everyone&amp;gt;" in joined  # an entity in evidence is shown as typed
    assert f"<@{REQUESTER}>" in joined  # the bot's own mention still works
    assert mention("U0ADMIN1") != "<@U0ADMIN1>"  # only poster-side inert() releases it


async def test_shell_adapter_shows_original_bytes_and_visible_controls() -> None:
    out = io.StringIO()
    poster = ShellPoster(out)
    for reply in chat_replies(HOSTILE):
        await poster.post("shell", reply)
    shown = out.getvalue()
    assert EVIDENCE in shown  # the original bytes of < > &
    assert "&lt;" not in shown.replace("&lt;!everyone&gt;", "")
    assert "<!channel>" in shown and "<http://evil.example|click me>" in shown  # as typed, inert
    assert "\\x1b[31mred" in shown and "\\u202e" in shown and "\\x07" in shown
    assert not CONTROL.search(shown.replace("\n", "").replace("\t", ""))


def test_cli_text_output_shows_original_bytes_and_visible_controls() -> None:
    out = io.StringIO()
    cli = CliContext(config=Config(), stdout=out, stderr=out)
    for text in terminal_texts(HOSTILE):
        cli.print(text)
    shown = out.getvalue()
    assert EVIDENCE in shown and "\\x1b[31m" in shown
    assert not CONTROL.search(shown.replace("\n", "").replace("\t", ""))


@pytest.mark.parametrize("offset", range(2985, 2996))
def test_long_evidence_is_split_and_clipped_between_entities(offset: int) -> None:
    from bot.render.reply import code_sections, header

    evidence = "x" * offset + "<&>" * 5 + "y" * 50
    texts = [b.to_dict()["text"]["text"] for b in code_sections(evidence)]
    texts.append(header(evidence[-140:] + "<<<<<").to_dict()["text"]["text"])
    for text in texts:
        assert not re.search(r"&(?!(?:lt|gt|amp);)", text), text[-20:]
    joined = "".join(t.removeprefix("```").removesuffix("```") for t in texts[:-1])
    assert joined == evidence.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
