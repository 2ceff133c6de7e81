"""The shell adapter driven through stdin: in-process and as `relaywatch serve` with a pipe."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from types import SimpleNamespace

from bot.commands import mailhealth
from bot.commands.base import CommandContext
from bot.config import Config
from bot.dispatch import Dispatcher
from bot.exitcodes import ExitCode
from bot.render.reply import ChatReply, buttons, header, link, mention, sections
from bot.shell import ShellAdapter, ShellPoster
from bot.store import Store


async def _threaded(ctx: CommandContext, text: str) -> ChatReply:
    return ChatReply(
        text="parent",
        blocks=[
            header("Result for <example>"),
            *sections(
                f"*bold* and _italic_ and {link('https://example.com', 'a link')} for "
                f"{mention('U1X')}; `<not a link>` and <http://evil|raw markup> stay text"
            ),
            buttons(("rerun", "Re-run", "threaded x"), ("show_details", "Show details", "7")),
        ],
        thread=[ChatReply(text="first detail"), ChatReply(text="second detail")],
    )


async def _boom(ctx: CommandContext, text: str) -> ChatReply:
    raise ValueError("kaput")


def _adapter(tmp_path, script: str) -> tuple[ShellAdapter, io.StringIO, Store]:
    store = Store(tmp_path / "rw.db")
    commands = {
        "mailhealth": mailhealth,
        "threaded": SimpleNamespace(NAME="threaded", USAGE="/threaded", SUMMARY="", run=_threaded),
        "boom": SimpleNamespace(NAME="boom", USAGE="/boom", SUMMARY="", run=_boom),
    }
    out = io.StringIO()
    adapter = ShellAdapter(
        Dispatcher(Config(), store, commands=commands),
        ShellPoster(out),
        stdin=io.StringIO(script),
        stderr=io.StringIO(),
        user="alice",
    )
    return adapter, out, store


async def test_commands_from_stdin_are_answered_in_order(tmp_path) -> None:
    script = "/mailhealth watch add 192.0.2.1\n\n# a comment\nmailhealth watch list\n"
    adapter, out, store = _adapter(tmp_path, script)
    assert await adapter.run() == ExitCode.OK
    text = out.getvalue()
    assert text.index("> /mailhealth watch add") < text.index("added ip 192.0.2.1")
    assert (
        text.index("added ip")
        < text.index("> mailhealth watch list")
        < text.index("Watch list (1)")
    )
    assert "a comment" not in text
    # the shell operator is trusted (it can read the config anyway) and audited by name
    assert [(e.user_id, e.channel_id, e.allowed) for e in store.audit_log()] == [
        ("alice", "shell", True),
        ("alice", "shell", True),
    ]
    assert store.watch_list()[0].added_by == "shell:alice"


async def test_blocks_render_as_text_and_threads_are_indented(tmp_path) -> None:
    adapter, out, _ = _adapter(tmp_path, "/threaded\n")
    await adapter.run()
    lines = out.getvalue().splitlines()
    assert "Result for <example>" in lines
    assert (
        "bold and italic and a link (https://example.com) for @U1X; "
        "<not a link> and <http://evil|raw markup> stay text"
    ) in lines
    assert "  [Re-run: /threaded x]  [Show details: details 7]" in lines
    assert "    │ first detail" in lines and "    │ second detail" in lines
    assert lines.index("    │ first detail") > lines.index("Result for <example>")


async def test_errors_and_usage_set_the_exit_code_and_the_loop_goes_on(tmp_path) -> None:
    adapter, out, _ = _adapter(tmp_path, "/boom\n/nosuch\n/mailhealth watch list\n")
    assert await adapter.run() == ExitCode.INCOMPLETE
    text = out.getvalue()
    assert "could not complete (error id" in text
    assert "unknown command /nosuch" in text
    assert "watch list is empty" in text


async def test_quit_stops_reading(tmp_path) -> None:
    adapter, out, _ = _adapter(tmp_path, "quit\n/mailhealth watch list\n")
    assert await adapter.run() == ExitCode.OK
    assert "watch list" not in out.getvalue()


async def test_details_and_ack_work_like_the_buttons(tmp_path) -> None:
    adapter, out, store = _adapter(tmp_path, "")
    check_id = store.record_check("blacklist", "192.0.2.1", "problem", {"target": "192.0.2.1"})
    alert = store.create_alert("blacklist:192.0.2.1", "blacklist", "listed")
    assert alert is not None
    adapter.stdin = io.StringIO(f"details {check_id}\nack {alert.id}\n")
    assert await adapter.run() == ExitCode.OK
    assert "Details: blacklist 192.0.2.1" in out.getvalue()
    assert store.alerts()[0].acknowledged_by == "alice"


def test_relaywatch_serve_without_tokens_reads_piped_stdin(tmp_path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "RELAYWATCH_")) and k != "XDG_CONFIG_HOME"
    }
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        RELAYWATCH_SCHEDULE_ENABLED="false",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        input="/mailhealth watch add example.com\n/mailhealth watch list\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "added domain example.com" in result.stdout
    assert "Watch list (1)" in result.stdout
    assert (tmp_path / "state" / "relaywatch" / "relaywatch.db").exists()


def test_on_a_terminal_it_prompts(tmp_path) -> None:
    import pty
    import select
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELAYWATCH_"))}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        RELAYWATCH_SCHEDULE_ENABLED="false",
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: relaywatch serve on a pseudo-terminal
        os.execve(sys.executable, [sys.executable, "-m", "bot.cli", "serve"], env)
    seen = b""

    def read_until(marker: bytes, within: float = 20.0, count: int = 1) -> None:
        nonlocal seen
        deadline = time.monotonic() + within
        while seen.count(marker) < count and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    return
        assert seen.count(marker) >= count, seen.decode(errors="replace")

    try:
        read_until(b"relaywatch> ")
        os.write(fd, b"/mailhealth watch list\n")
        read_until(b"watch list is empty")
        read_until(b"relaywatch> ", within=5, count=2)  # the next prompt, after the answer
        os.write(fd, b"quit\n")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"relaywatch shell" in seen  # the banner


def test_no_tokens_and_nothing_on_stdin_says_what_to_set(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELAYWATCH_"))}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        RELAYWATCH_SCHEDULE_ENABLED="false",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == ExitCode.USAGE
    assert "SLACK_BOT_TOKEN" in result.stderr and len(result.stderr.splitlines()) == 1
