"""Log-summary suspects and monitor suspect alerts carry the containment buttons when the subject
can be contained at smtpd (an account, a client address), and not otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.checks import CheckOutcome
from bot.monitor.alerts import Alerter
from bot.render.mailsummary import chat_reply
from bot.store import Store
from tests.fixtures.digest_history import RecordingPoster, mail_data, record, suspect


def typed(kind: str, subject: str, subject_type: str) -> dict:
    return {**suspect(kind, subject), "subject_type": subject_type}


def contain_values(blocks) -> list[str]:
    return [
        e["value"]
        for b in (x if isinstance(x, dict) else x.to_dict() for x in blocks)
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("contain_")
    ]


def test_summary_suspects_get_buttons_for_accounts_and_clients_only() -> None:
    data = {
        **mail_data(
            suspects=[
                typed("sasl_many_ips", "Alice@example.com", "account"),
                typed("internal_host_outbound", "pc7.lan[192.168.1.50]", "client"),
                typed("volume_spike", "www-data@example.com", "local_sender"),
                typed("sasl_bruteforce", "203.0.113.9", "client"),
            ]
        ),
        "subject": "24h",
    }
    reply = chat_reply(CheckOutcome("mailsummary", "24h", "ok", data), throttle_rate="5/h")
    values = contain_values(reply.blocks)
    assert values == [
        "block account alice@example.com from log summary: account used from many places",
        "hold account alice@example.com from log summary: account used from many places",
        "throttle account alice@example.com 5/h from log summary: account used from many places",
        "block host 192.168.1.50 from log summary: internal host sending straight out",
        "hold host 192.168.1.50 from log summary: internal host sending straight out",
        "throttle host 192.168.1.50 5/h from log summary: internal host sending straight out",
    ]


async def test_suspect_alert_has_the_buttons(tmp_path) -> None:
    with Store(tmp_path / "rw.db") as store:
        poster = RecordingPoster()
        alerter = Alerter(store, poster, "C0ALERTS", throttle_rate="20/h")
        data = mail_data(suspects=[typed("sasl_many_ips", "bob@example.com", "account")])
        checked = store.check(record(store, "mailsummary", "24h", data))
        await alerter.on_mailsummary(checked, datetime.now(UTC))
        (opening,) = poster.top_level()
        values = contain_values(opening.reply.blocks)
        assert [v.split(" ", 1)[0] for v in values] == ["block", "hold", "throttle"]
        assert all("bob@example.com" in v for v in values)


def test_confirm_dialog_text_is_escaped() -> None:
    from bot.render.containment import contain_buttons

    block = contain_buttons("account", "a&b@example.com", "x", "20/h", 7).to_dict()
    texts = [e["confirm"]["text"]["text"] for e in block["elements"]]
    assert all("a&amp;b@example.com" in t for t in texts[:3])
    assert [e["action_id"] for e in block["elements"]][-1] == "contain_dismiss"
