"""Who submitted each queued message: the client and SASL account from the MTA's log.

Postfix logs `QUEUEID: client=name[ip], sasl_method=…, sasl_username=…` when smtpd creates the
message; Exim logs `ID <= sender H=… [ip]:port … A=authenticator:user`. Only the queue IDs asked
for are kept, so memory follows the queue, not the log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator

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


def iter_origins(lines: Iterable[str], wanted: Collection[str]) -> Iterator[tuple[str, Origin]]:
    """(queue ID, origin) for each creation line of a wanted message, in log order."""
    for line in lines:
        if "client=" in line:
            match = _POSTFIX.search(line)
        elif " <= " in line:
            match = _EXIM.search(line)
        else:
            continue
        if match and match["id"] in wanted:
            yield match["id"], Origin(match["ip"], match["user"] or "")


def iter_origins_in_logs(
    paths: Iterable[str], wanted: Collection[str], warn: Callable[[str], None]
) -> Iterator[tuple[str, Origin]]:
    """The same over each log and its rotations, oldest first; unreadable files are warned
    about and skipped. Streams: nothing is kept but what the caller keeps."""
    for path in paths:
        for name in rotations(path) or [path]:
            try:
                with open_binary(name) as stream:
                    yield from iter_origins(iter_lines(stream), wanted)
            except (OSError, EOFError) as exc:
                warn(f"could not read {name} to tie queued mail to its sender: {exc}")


def origins_from_logs(
    paths: Iterable[str], wanted: Collection[str]
) -> tuple[dict[str, Origin], list[str]]:
    """(origins, warnings) from each log and its rotations, oldest first."""
    warnings: list[str] = []
    if not wanted:
        return {}, warnings
    return dict(iter_origins_in_logs(paths, wanted, warnings.append)), warnings
