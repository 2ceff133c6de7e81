"""Running checkdmarc safely: one run at a time, each with an empty answer cache.

checkdmarc keeps a process-wide DNS answer cache (`checkdmarc.utils.DNS_CACHE`, 30 minutes) keyed by
name and type only, not by the nameserver asked. Left alone, a monitor run would repeat answers up
to half an hour old, and a run against one nameserver could be answered from another's. It has no
switch for this, so every run here holds a lock and starts with the cache emptied; the cache still
saves repeated lookups within the run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_LOCK = threading.Lock()  # guards checkdmarc's module-level cache, not our own state


@contextlib.contextmanager
def fresh_checkdmarc() -> Iterator[None]:
    from checkdmarc import utils

    with _LOCK:
        utils.DNS_CACHE.clear()
        try:
            yield
        finally:
            utils.DNS_CACHE.clear()
