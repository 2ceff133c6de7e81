"""Exim totals against eximstats 1.61 on a log a real Exim 4.96 wrote: SMTP sessions into a
private Debian Exim on loopback (accepted, rejected at RCPT, rejected after DATA, too big, dropped
for too many unknown commands), then our summary of its main log beside eximstats' report."""

from __future__ import annotations

import shutil
import smtplib
import socket
from collections.abc import Iterator

import pytest

from handlers.logsummary.engine import SummaryOptions, summarize_logs_sync
from handlers.logsummary.lan import discover_internal_networks
from tests.fixtures.exim_lines import REJECTION_LINES
from tests.integration.exim.exim_instance import (
    EXIM,
    EXIMSTATS,
    LOCAL_DOMAIN,
    EximInstance,
    EximUnavailable,
    availability_problem,
    eximstats,
    grand_totals,
    league,
    remove,
    start_exim,
)

BOB, CAROL = f"bob@{LOCAL_DOMAIN}", f"carol@{LOCAL_DOMAIN}"


@pytest.fixture(scope="module")
def exim() -> Iterator[EximInstance]:
    problem = availability_problem()
    if problem:
        pytest.skip(problem)
    try:
        instance = start_exim()
    except EximUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield instance
    finally:
        remove(instance)


def _message(subject: str, body: str = "hello\n") -> str:
    return f"From: a@far.example\nTo: {BOB}\nSubject: {subject}\n\n{body}"


def _drive(exim: EximInstance) -> None:
    with smtplib.SMTP("127.0.0.1", exim.port, local_hostname="client.far.example") as smtp:
        smtp.sendmail("a@far.example", [BOB, CAROL], _message("hello"))
        smtp.sendmail("b@far.example", [BOB], _message("again"))
        for rcpt in ("x@elsewhere.example", f"nobody@{LOCAL_DOMAIN}"):  # rejected at RCPT
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("c@far.example", [rcpt], _message("no"))
        with pytest.raises(smtplib.SMTPDataError):  # rejected after DATA (carries a message ID)
            smtp.sendmail("spam@far.example", [BOB], _message("reject-me"))
        for sender in ("big1@far.example", "big2@far.example"):  # SIZE over the limit at MAIL
            with pytest.raises(smtplib.SMTPSenderRefused):
                smtp.sendmail(sender, [BOB], _message("big", "x" * 5000))
    with socket.create_connection(("127.0.0.1", exim.port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        stream.readline()
        for _ in range(4):  # smtp_max_unknown_commands = 3: the fourth gets us dropped
            stream.write(b"XYZZY\r\n")
            stream.flush()
            stream.readline()
    exim.settled()


@pytest.fixture(scope="module")
def logged(exim: EximInstance) -> tuple[dict, str]:
    _drive(exim)
    exim.stop()  # the log is complete once the daemon is gone
    report = summarize_logs_sync(SummaryOptions(paths=(str(exim.mainlog),)))
    return report, eximstats(exim.mainlog)


def test_every_line_is_read(logged) -> None:
    report, _ = logged
    assert report.summary.unparsed_lines == 0, report.summary.unparsed_sample
    assert report.summary.mail_lines == report.summary.lines


def test_totals_match_eximstats(logged) -> None:
    report, stats = logged
    totals = report.totals()
    grand = grand_totals(stats)
    received_volume, received_messages = grand["Received"][0], grand["Received"][1]
    assert (totals["received"], str(totals["bytes_received"])) == (
        int(received_messages),
        received_volume,
    )
    # eximstats counts a delivery run as a "message"; recipients delivered are its addresses
    delivered_volume, delivered_addresses = grand["Delivered"][0], grand["Delivered"][2]
    assert totals["delivered"] == int(delivered_addresses) == 3  # per recipient, as pflogsumm
    assert str(totals["bytes_delivered"]) == delivered_volume
    assert totals["rejected"] == int(grand["Rejects"][0]) == 6


def test_rejection_reasons_are_grouped_as_eximstats_groups_them(logged) -> None:
    report, stats = logged
    theirs = league(stats, "Top 50 mail rejection reasons by message count")
    ours = {row["reason"]: row["count"] for row in report.to_dict()["reject_reasons"]}
    # one reason per kind of rejection, never one per sender or message size
    assert ours == {
        "message too big: max=2048": 2,
        "relay not permitted": 1,
        "unknown user": 1,
        "content rejected": 1,
        "dropped: too many unrecognized commands": 1,
    }
    assert theirs["Message too big"] == ours["message too big: max=2048"]
    assert theirs["Content rejected"] == ours["content rejected"]
    assert theirs["Dropped: too many unrecognized commands"] == 1
    assert sorted(theirs.values()) == sorted(ours.values())


def test_relay_from_hosts_is_the_default_lan(exim: EximInstance) -> None:
    lan = discover_internal_networks(postconf=None, exim=[str(EXIM)], exim_config=str(exim.config))
    assert lan.networks == ("192.0.2.0/24", "::1/128")
    assert lan.source == "Exim relay_from_hosts (exim4 -bP +relay_from_hosts)"


def test_eximstats_counts_each_rejection_form_as_we_do(tmp_path) -> None:
    # only eximstats is needed here, not the daemon
    if not EXIMSTATS.is_file() or shutil.which("perl") is None:
        pytest.skip("eximstats (exim4-base, unpacked by .ci/run) or perl is missing")
    log = tmp_path / "mainlog"
    log.write_text("\n".join(REJECTION_LINES) + "\n")
    stats = eximstats(log)
    report = summarize_logs_sync(SummaryOptions(paths=(str(log),)))
    assert report.totals()["rejected"] == int(grand_totals(stats)["Rejects"][0]) == 9
    theirs = league(stats, "Top 50 mail rejection reasons by message count")
    ours = [row["count"] for row in report.to_dict()["reject_reasons"]]
    assert sorted(theirs.values()) == sorted(ours)  # the same grouping: 2 × too big, 1 × the rest
