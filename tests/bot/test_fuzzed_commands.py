"""Fuzzed command text from an ordinary workspace member never ends in "failed unexpectedly".

Every chat command and both button actions get arbitrary text, and text built from the characters
parsers trip over (digits of other scripts, brackets, colons, Slack's link syntax, NUL, bidi
overrides). Name lookups go to a closed loopback port, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Config
from bot.dispatch import Dispatcher, Invocation
from bot.store import Store

TRICKY = [*"0123456789:[]/.<>|@-_ abcxyz²٣#!", "\x00", "\u202e", "xn--", "::", ".."]
TEXT = st.one_of(st.text(max_size=60), st.lists(st.sampled_from(TRICKY), max_size=20).map("".join))


async def _quiet(_: str) -> None:
    pass


def test_no_command_text_makes_an_error_id(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    config = Config()
    config.logs.paths = [str(log)]
    config.blacklist.nameservers = ["127.0.0.1:9"]  # discard port: nothing answers
    config.relay.nameservers = ["127.0.0.1:9"]
    config.relay.dns_timeout = 0.2
    config.slack.commands_per_minute = 0
    store = Store(tmp_path / "rw.db")
    dispatcher = Dispatcher(config, store)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from(["mailsummary", "mailhealth", "blacklist", "relaycheck", "details", "ack"]),
        TEXT,
    )
    def check(command: str, text: str) -> None:
        if command == "mailhealth":
            text = "watch " + text  # the digest (no argument) is not a parser
        inv = Invocation(command, text, "U0MEMBER", "C0OPS", source="slack")
        if command == "details":
            result = asyncio.run(dispatcher.show_details(inv))
        elif command == "ack":
            result = asyncio.run(dispatcher.acknowledge(inv))
        else:
            result = asyncio.run(dispatcher.handle(inv, _quiet))
        assert not result.error_id, (command, text, result.reply.text)

    try:
        check()
    finally:
        store.close()
