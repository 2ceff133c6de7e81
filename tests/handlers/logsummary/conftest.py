"""Fixtures for the log-summary tests: the shared real Postfix log, and a builder for small
synthetic Postfix logs (one message at a time, with the lines a real Postfix writes)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# ../shared/logs beside the checkout (or beside the directory of git worktrees)
SHARED_LOGS_CANDIDATES = tuple(
    Path(__file__).resolve().parents[level] / "shared" / "logs" for level in (4, 5)
)
SHARED_LOGS = next((p for p in SHARED_LOGS_CANDIDATES if p.is_dir()), SHARED_LOGS_CANDIDATES[0])


@pytest.fixture(scope="session")
def shared_log() -> Path:
    path = SHARED_LOGS / "postfix-mixed.log"
    assert path.is_file(), f"{path} is missing: the tests need ../shared/logs beside the checkout"
    return path


@dataclass
class PostfixLog:
    """Writes Postfix-shaped syslog lines: `message(...)` logs one message end to end."""

    day: str = "Nov 28"
    hour: int = 10
    lines: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(0x10000))
    _second: int = 0

    def stamp(self) -> str:
        self._second += 1
        minute, second = divmod(self._second % 3600, 60)
        return f"{self.day} {self.hour:02d}:{minute:02d}:{second:02d}"

    def add(self, program: str, text: str, pid: int = 100) -> None:
        self.lines.append(f"{self.stamp()} mx {program}[{pid}]: {text}")

    def message(
        self,
        client: str,
        sender: str,
        recipients: list[str],
        sasl_user: str = "",
        status: str = "sent",
        transport: str = "smtp",
        reply: str = "250 2.0.0 Ok: queued as ABC",
        size: int = 1000,
    ) -> str:
        qid = f"{next(self._ids):X}A"
        service = "postfix/submission/smtpd" if sasl_user else "postfix/smtpd"
        self.add(service, f"connect from unknown[{client}]", 200)
        auth = f", sasl_method=PLAIN, sasl_username={sasl_user}" if sasl_user else ""
        self.add(service, f"{qid}: client=unknown[{client}]{auth}", 200)
        self.add("postfix/cleanup", f"{qid}: message-id=<{qid}@example.org>", 300)
        self.add(
            "postfix/qmgr",
            f"{qid}: from=<{sender}>, size={size}, nrcpt={len(recipients)} (queue active)",
            400,
        )
        self.add(service, f"disconnect from unknown[{client}] ehlo=1 mail=1 quit=1", 200)
        dsn = {"sent": "2.0.0", "bounced": "5.1.1", "deferred": "4.4.1"}[status]
        relay = "virtual" if transport == "virtual" else "mx.remote.example[192.0.2.25]:25"
        for rcpt in recipients:
            self.add(
                f"postfix/{transport}",
                f"{qid}: to=<{rcpt}>, relay={relay}, delay=0.1, delays=0/0/0/0.1, dsn={dsn}, "
                f"status={status} ({reply})",
                500,
            )
        if status != "deferred":
            self.add("postfix/qmgr", f"{qid}: removed", 400)
        return qid

    def relay_denied(self, client: str, rcpt: str = "victim@elsewhere.example") -> None:
        self.add(
            "postfix/smtpd",
            f"NOQUEUE: reject: RCPT from unknown[{client}]: 554 5.7.1 <{rcpt}>: Relay access "
            f"denied; from=<spam@spam.example> to=<{rcpt}> proto=ESMTP helo=<x>",
        )

    def auth_failure(self, client: str, user: str) -> None:
        self.add(
            "postfix/submission/smtpd",
            f"warning: unknown[{client}]: SASL LOGIN authentication failed: authentication "
            f"failure, sasl_username={user}",
        )

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return path


@pytest.fixture
def postfix_log() -> PostfixLog:
    return PostfixLog()
