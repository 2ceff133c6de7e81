"""Numbers from users (ports, windows, ids, counts) that are not plain bounded ASCII numbers.

Superscripts pass str.isdigit() and crash int(); other scripts' digits pass int() and mean nothing
to a mail server; huge numbers overflow a timedelta, a C int or an SQLite INTEGER. Every parser —
the engines', each CLI subcommand's, each chat command's through the dispatcher and the shell
adapter — must answer them with a one-line usage error, never a traceback or an error id.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.checks.blacklist import parse_targets
from bot.cli import main
from bot.config import Config
from bot.dispatch import Dispatcher
from bot.exitcodes import ExitCode
from bot.shell import ShellAdapter, ShellPoster
from bot.store import Store
from bot.watchlist import WatchValueError, classify
from handlers.blacklist import BlacklistSetupError, TargetError
from handlers.blacklist.engine import parse_nameserver
from handlers.logsummary.timefmt import TimeSpecError, parse_time_spec
from handlers.relay.diagnostics import size_limit
from handlers.relay.targets import TargetError as RelayTargetError
from handlers.relay.targets import parse_target

# Not a plain bounded number: other scripts' digits and superscripts, or far too large.
HOSTILE = st.one_of(
    st.text(
        alphabet=st.characters(categories=("Nd", "No"), exclude_characters="0123456789"),
        min_size=1,
        max_size=4,
    ),
    st.integers(min_value=10**19, max_value=10**60).map(str),
    st.sampled_from(["²⁵", "¹", "٢٥", "۲۵", "२५", "99999999999999999999"]),
)
QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(HOSTILE)
def test_engine_and_bot_parsers_refuse_with_their_own_error(number: str) -> None:
    with pytest.raises(RelayTargetError):
        parse_target(f"127.0.0.1:{number}")
    with pytest.raises(RelayTargetError):
        parse_target(f"[::1]:{number}")
    with pytest.raises(WatchValueError):
        classify(f"mx.example.com:{number}")
    with pytest.raises(BlacklistSetupError):
        parse_nameserver(f"127.0.0.1:{number}")
    with pytest.raises(TargetError):
        parse_targets(Config(), [f"mx.example.com:{number}"])
    # a hostile SMTP server's EHLO line
    assert size_limit([f"SIZE {number}"]) in (0, int(number) if number.isascii() else 0)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for unit in "smhdw":
        if number.isascii():  # a huge ASCII number: too long a window
            with pytest.raises(TimeSpecError, match="too long"):
                parse_time_spec(f"{number}{unit}", now)
        else:
            with pytest.raises(TimeSpecError):
                parse_time_spec(f"{number}{unit}", now)


def _cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, err.getvalue()


def test_every_cli_subcommand_gives_a_one_line_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    log = tmp_path / "mail.log"
    log.write_text("")
    monkeypatch.setenv("RELAYWATCH_STORE_PATH", str(tmp_path / "rw.db"))
    common = ("--config", str(config))

    @QUICK
    @given(HOSTILE)
    def check(number: str) -> None:
        for argv in (
            ("relaycheck", f"127.0.0.1:{number}"),
            ("relaycheck", f"mx.example.com:{number}"),
            ("blacklist", f"mx.example.com:{number}"),
            ("blacklist", "--nameserver", f"127.0.0.1:{number}", "192.0.2.1"),
            ("watch", "add", f"mx.example.com:{number}"),
            ("watch", "remove", f"[2001:db8::1]:{number}"),
            ("mailsummary", "--since", f"{number}d", str(log)),
            ("mailsummary", "--until", f"{number}h", str(log)),
            ("mailsummary", "--top", number, str(log)),
            ("serve", "--port", number),
        ):
            code, err = _cli(*common, *argv)
            assert code == ExitCode.USAGE, (argv, err)
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)

    check()


def test_every_chat_command_answers_with_usage_not_an_error_id(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    config = Config()
    config.logs.paths = [str(log)]
    store = Store(tmp_path / "rw.db")
    adapter = ShellAdapter(
        Dispatcher(config, store),
        ShellPoster(io.StringIO()),
        stdin=io.StringIO(""),
        stderr=io.StringIO(),
        user="alice",
    )

    @QUICK
    @given(HOSTILE)
    def check(number: str) -> None:
        for line in (
            f"/relaycheck 127.0.0.1:{number}",
            f"/blacklist mx.example.com:{number}",
            f"/mailhealth watch add mx.example.com:{number}",
            f"/mailhealth watch remove 192.0.2.1:{number}",
            f"/mailsummary {number}d",
            f"/mailsummary 2026-11-27T00:00 {number}w",
            f"details {number}",
            f"ack {number}",
        ):
            result = asyncio.run(adapter.handle_line(line))
            assert result is not None
            assert not result.error_id, (line, result.reply.text)
            assert result.reason.startswith(("usage:", "check ", "alert ")), (line, result.reason)

    try:
        check()
    finally:
        store.close()
