"""The door of the HTTP endpoint: anything that is not a complete, signed Slack request is
answered 400/401/408/413 before Bolt sees it, with at most one log line, and the log lines
themselves rate-limited, so a flood of junk cannot fill the disk or reach a traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("relaywatch.http")

# Slack's requests are small; a block_actions payload carries the whole message, well under this
MAX_BODY_BYTES = 1024 * 1024
BODY_READ_SECONDS = 10.0
# Slack signs with a timestamp and refuses requests older than five minutes; so do we
MAX_SKEW_SECONDS = 300


class LogThrottle:
    """At most `burst` lines per `interval` seconds per kind; then one line counting the rest."""

    def __init__(
        self,
        burst: int = 5,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self._windows: dict[str, tuple[float, int]] = {}  # kind → (window start, lines seen)

    def warning(self, kind: str, message: str, **extra: object) -> None:
        if self.allow(kind):
            self.logger.warning(message, extra={"kind": kind, **extra})

    def exception(self, kind: str, message: str) -> None:
        if self.allow(kind):
            self.logger.exception(message, extra={"kind": kind})

    def allow(self, kind: str) -> bool:
        """Counts one line of `kind`; False when it is over this window's burst."""
        now = self.clock()
        start, seen = self._windows.get(kind, (now, 0))
        if now - start >= self.interval:
            if seen > self.burst:
                self.logger.warning(
                    "%d more %s requests in the last %.0f s (not logged one by one)",
                    seen - self.burst,
                    kind,
                    self.interval,
                )
            start, seen = now, 0
        seen += 1
        self._windows[kind] = (start, seen)
        return seen <= self.burst


class ServerLogFilter(logging.Filter):
    """aiohttp's own "Error handling request" lines (with a traceback each) for requests its HTTP
    parser refuses: one short, rate-limited warning instead."""

    def __init__(self, throttle: LogThrottle) -> None:
        super().__init__()
        self.throttle = throttle

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        if record.levelno < logging.WARNING:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return self.throttle.allow("server-error")
        if not self.throttle.allow("malformed-http"):
            return False
        first_line = (str(exc.message) or type(exc).__name__).splitlines()[0][:120]
        record.msg = "refused a malformed HTTP request: %s"
        record.args = (first_line,)
        record.exc_info = None
        record.exc_text = None
        record.levelno = logging.WARNING
        record.levelname = "WARNING"
        return True


@dataclass(frozen=True)
class Rejection:
    status: int
    kind: str  # what the log line counts
    text: str  # the answer's body: short, says nothing about our configuration


def header_rejection(
    headers: object, signing_secret: str, body: bytes, now: float
) -> Rejection | None:
    """Checks Slack's v0 signature; None when the request is authentic and fresh."""
    get = headers.get  # type: ignore[attr-defined]
    timestamp = get("X-Slack-Request-Timestamp") or ""
    signature = get("X-Slack-Signature") or ""
    if not timestamp or not signature:
        return Rejection(401, "unsigned", "missing signature")
    # ASCII digits only ("1e9", "²⁵" and " 12" are not timestamps), and a sane length
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return Rejection(400, "malformed", "malformed timestamp")
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return Rejection(401, "stale", "stale timestamp")
    if not (signature.startswith("v0=") and len(signature) == 67 and signature.isascii()):
        return Rejection(400, "malformed", "malformed signature")
    expected = hmac.new(
        signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest("v0=" + expected, signature):
        return Rejection(401, "forged", "invalid signature")
    return None


async def read_body(request: web.Request, within: float) -> bytes | Rejection:
    """The whole body, or why not: too large, not sent in time, or the client went away."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return Rejection(413, "oversized", "request too large")
    try:
        async with asyncio.timeout(within):
            body = await request.content.read(MAX_BODY_BYTES + 1)
            # read(n) may return early; keep reading until the end or the cap
            while len(body) <= MAX_BODY_BYTES and not request.content.at_eof():
                more = await request.content.read(MAX_BODY_BYTES + 1 - len(body))
                if not more:
                    break
                body += more
    except TimeoutError:
        return Rejection(408, "slow", "request body not received in time")
    except Exception:
        # half-sent bodies (the client closed), chunked-encoding errors, …
        return Rejection(400, "incomplete", "incomplete request body")
    if len(body) > MAX_BODY_BYTES:
        return Rejection(413, "oversized", "request too large")
    if request.content_length is not None and len(body) != request.content_length:
        return Rejection(400, "incomplete", "incomplete request body")
    return body
