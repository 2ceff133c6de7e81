"""The shell adapter's read loop: one command per line, answered like Slack would, as text.

Interactive (a terminal) it shows a prompt; fed by a pipe or a file it reads one command per line
and exits at the end of input, with an exit code a script can test.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import TextIO

from bot.dispatch import SHELL_CHANNEL, Dispatcher, DispatchResult, Invocation, parse_command_line
from bot.exitcodes import ExitCode
from bot.failure import new_error_id, one_line
from bot.progress import TerminalProgress
from bot.render.terminal import visible
from bot.shell.poster import ShellPoster

log = logging.getLogger("relaywatch.shell")

PROMPT = "relaywatch> "
QUIT = ("quit", "exit", "/quit", "/exit", ":q")
BANNER = (
    "relaywatch shell: type a command as in Slack, e.g. /blacklist 192.0.2.1 or "
    "/mailhealth watch list\n"
    "'help' lists the commands, 'details <check id>' and 'ack <alert id>' work like the buttons "
    "(a containment button shows the /contain line it runs), 'quit' leaves.\n"
)


@dataclass
class ShellAdapter:
    dispatcher: Dispatcher
    poster: ShellPoster
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    interactive: bool = False
    user: str = field(default_factory=getpass.getuser)
    worst: int = ExitCode.OK
    handled: int = 0  # commands answered (blank lines and comments do not count)

    async def run(self) -> int:
        """Reads and answers commands until end of input or 'quit'; returns the exit code."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        ready = threading.Event()  # the next prompt appears only after the answer is printed
        ready.set()
        # A daemon thread, not the default executor: a pending input() must not keep the
        # process alive after 'quit' or Ctrl-C.
        reader = threading.Thread(
            target=self._read_lines, args=(loop, lines, ready), name="shell-stdin", daemon=True
        )
        if self.interactive:
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401  (line editing and history for input())
            self.poster.stream.write(BANNER)
            self.poster.stream.flush()
        reader.start()
        while True:
            line = await lines.get()
            if line is None or line.strip().lower() in QUIT:
                break
            try:
                await self.answer(line)
            finally:
                ready.set()
        return self.worst

    async def answer(self, line: str) -> None:
        """One line, answered whatever happens: a typo or a crash never ends the session."""
        try:
            await self.handle_line(line)
        except Exception as exc:
            error_id = new_error_id()
            log.error(
                "shell command failed",
                exc_info=True,
                extra={"error_id": error_id, "line": line.strip()[:200]},
            )
            self.worst = max(self.worst, ExitCode.INCOMPLETE)
            with contextlib.suppress(Exception):  # the terminal itself may be what failed
                self.poster.stream.write(
                    f"could not complete: {one_line(exc)} (error id {error_id}; "
                    "the details are in the log)\n"
                )
                self.poster.stream.flush()

    def _read_lines(
        self,
        loop: asyncio.AbstractEventLoop,
        lines: asyncio.Queue[str | None],
        ready: threading.Event,
    ) -> None:
        while True:
            ready.wait()
            ready.clear()
            try:
                line: str | None = input(PROMPT) if self.interactive else self.stdin.readline()
            except (EOFError, KeyboardInterrupt, OSError, ValueError):
                line = None
            if line == "" and not self.interactive:
                line = None  # readline() returns "" only at end of input
            loop.call_soon_threadsafe(lines.put_nowait, line)
            if line is None:
                return

    async def handle_line(self, line: str) -> DispatchResult | None:
        text = line.strip()
        if not text or text.startswith("#"):
            return None
        self.handled += 1
        if not self.interactive:
            # echo, so a transcript of a scripted run shows which answer belongs to which line
            self.poster.stream.write(f"> {visible(text)}\n")
        name, args = parse_command_line(text)
        if name in ("help", "?"):
            name, args = "mailhealth", "help"
        inv = Invocation(
            command=name, args=args, user_id=self.user, channel_id=SHELL_CHANNEL, source="shell"
        )
        if name in ("details", "show_details"):
            result = await self.dispatcher.show_details(
                Invocation("show_details", args, self.user, SHELL_CHANNEL, source="shell")
            )
        elif name in ("ack", "acknowledge"):
            result = await self.dispatcher.acknowledge(
                Invocation("acknowledge", args, self.user, SHELL_CHANNEL, source="shell")
            )
        else:
            result = await self._run(inv)
        await self.poster.post(SHELL_CHANNEL, result.reply)
        self._note(result)
        return result

    async def _run(self, inv: Invocation) -> DispatchResult:
        meter = TerminalProgress(self.stderr)

        async def progress(text: str) -> None:
            meter(f"{inv.line}: {text}")

        try:
            return await self.dispatcher.handle(inv, progress)
        finally:
            meter.clear()

    def _note(self, result: DispatchResult) -> None:
        if result.error_id:
            self.worst = max(self.worst, ExitCode.INCOMPLETE)
        elif not result.allowed or result.reason.startswith(("usage:", "unknown command")):
            self.worst = max(self.worst, ExitCode.USAGE)
