"""Queue IDs as the MTAs write them; anything else never reaches postsuper or exim."""

from __future__ import annotations

import re

# Postfix short IDs (hex) and long IDs (enable_long_queue_ids: base-52 time, no vowels, 'z', inode)
_POSTFIX = re.compile(r"[0-9A-F]{6,16}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,24}")
# Exim: 6-6-2 before 4.97, 6-11-4 from 4.97 on
_EXIM = re.compile(
    r"[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4})"
)


class QueueIdError(ValueError):
    """Not a queue ID of that MTA (the message names it)."""


def is_queue_id(text: str, mta: str) -> bool:
    pattern = _EXIM if mta == "exim" else _POSTFIX
    return bool(pattern.fullmatch(text))


def checked_ids(ids: list[str], mta: str, limit: int) -> list[str]:
    """The IDs, each validated, at most `limit` of them; raises QueueIdError otherwise.

    `ALL` and anything with a space, a dash option or a path is refused here, so the privileged
    command only ever receives plain IDs.
    """
    if len(ids) > limit:
        raise QueueIdError(f"{len(ids)} queue IDs at once; at most {limit} per call")
    for text in ids:
        if not is_queue_id(text, mta):
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise QueueIdError(f"not a {mta} queue ID: {shown!r}")
    return list(dict.fromkeys(ids))
