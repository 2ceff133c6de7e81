"""Check runners: map the configuration onto an engine's plain inputs, run it, and wrap the result.

One module per engine (`bot/checks/blacklist.py`, `relay.py`, `mailsummary.py`). The CLI, the chat
commands and the scheduler all run checks through these, so each engine is configured in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

CheckStatus = Literal["ok", "problem", "failed"]

# Engines report progress as short human sentences ("12/21 tests on mx.example.com:25").
ProgressCallback = Callable[[str], None]


@dataclass
class CheckOutcome:
    """A finished check: what ran, whether it found a problem, and its documented JSON document."""

    kind: str  # "blacklist" | "relay" | "mailsummary"
    subject: str  # what was checked, as the user named it ("192.0.2.1", "watch list", "24h")
    status: CheckStatus  # ok: nothing wrong; problem: found one; failed: could not complete
    data: dict[str, Any]  # exactly what `--json` prints; also what the store keeps
    result: Any = None  # the engine's typed result, for renderers


def exit_code_for(status: CheckStatus) -> int:
    from bot.exitcodes import ExitCode

    return {"ok": ExitCode.OK, "problem": ExitCode.PROBLEM, "failed": ExitCode.INCOMPLETE}[status]
