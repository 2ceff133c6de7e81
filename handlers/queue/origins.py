"""Who submitted each queued message: the client and SASL account from the MTA's log.

Postfix logs `QUEUEID: client=name[ip], sasl_method=…, sasl_username=…` when smtpd creates the
message; Exim logs `ID <= sender H=… [ip]:port … A=authenticator:user`. Only the queue IDs asked
for are kept, so memory follows the queue, not the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from handlers.logsummary.inputs import iter_lines, open_binary, rotations
from handlers.queue.model import Origin

_POSTFIX = re.compile(
    r"\]: (?P<id>[0-9A-Za-z]{6,24}): client=[^\[\s]*\[(?P<ip>[^\]]+)\]"
    r"(?:.*?sasl_username=(?P<user>[^,\s]+))?"
)
_EXIM = re.compile(
    r" (?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) <= .*?\[(?P<ip>[0-9A-Fa-f:.]+)\]"
    r"(?:.*? A=[^:\s]+:(?P<user>\S+))?"
)


def origins_from_lines(lines: Iterable[str], wanted: set[str]) -> dict[str, Origin]:
    found: dict[str, Origin] = {}
    for line in lines:
        if "client=" in line:
            match = _POSTFIX.search(line)
        elif " <= " in line:
            match = _EXIM.search(line)
        else:
            continue
        if match and match["id"] in wanted:
            found[match["id"]] = Origin(match["ip"], match["user"] or "")
    return found


def origins_from_logs(
    paths: Iterable[str], wanted: set[str]
) -> tuple[dict[str, Origin], list[str]]:
    """(origins, warnings) from each log and its rotations, oldest first."""
    found: dict[str, Origin] = {}
    warnings: list[str] = []
    if not wanted:
        return found, warnings
    for path in paths:
        for name in rotations(path) or [path]:
            try:
                with open_binary(name) as stream:
                    found.update(origins_from_lines(iter_lines(stream), wanted))
            except (OSError, EOFError) as exc:
                warnings.append(f"could not read {name} to tie queued mail to its sender: {exc}")
    return found, warnings
