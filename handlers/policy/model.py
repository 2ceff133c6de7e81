"""Typed values shared by the policy service, the containment store and the chat commands.

A containment entry says what to do to whom and until when; an alarm is what the live counters
saw cross a threshold. Both are plain data so the store, the service and the renderers agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# account: a SASL login name; host: an IP or a CIDR; sender: an envelope sender address;
# sender_domain: the domain of envelope senders.
SUBJECT_KINDS = ("account", "host", "sender", "sender_domain")
# block: REJECT at RCPT; hold: HOLD (Postfix hold queue / Exim freeze); throttle: DEFER past a rate.
CONTAINMENT_ACTIONS = ("block", "hold", "throttle")


@dataclass(frozen=True)
class Containment:
    """One admin decision, as the store keeps it. Active from set_at until expires_at or release."""

    id: int
    subject_kind: str
    subject: str  # normalised: lower-case address/domain, canonical IP/CIDR text
    action: str
    reason: str
    set_by: str
    set_at: datetime
    expires_at: datetime
    limit_per_hour: int = 0  # throttle only
    cut_sessions: bool = False  # block only: answer one 421 so live sessions end
    channel: str = ""  # the alert thread the decision belongs to
    thread_ts: str = ""
    released_at: datetime | None = None
    released_by: str = ""
    reminded: bool = False  # the "lapses soon" reminder was posted

    def active(self, now: datetime) -> bool:
        return self.released_at is None and self.set_at <= now < self.expires_at


@dataclass(frozen=True)
class PolicyAlarm:
    """A live counter crossed a threshold: who, which rule, and the evidence behind it."""

    rule: str  # e.g. "account_messages_per_minute"
    subject_kind: str
    subject: str
    count: int
    threshold: int
    window_seconds: int
    at: datetime
    client_addresses: tuple[str, ...] = ()
    sample_recipients: tuple[str, ...] = ()
    policy_context: str = ""
    detail: dict[str, object] = field(default_factory=dict)
    # the clock window the alarm is for; None: the one `at` falls in (aligned to UTC). The store
    # keeps one alarm per rule, subject and window, whichever replica raised it first
    window_start: datetime | None = None

    def clock_window(self) -> datetime:
        if self.window_start is not None:
            return self.window_start
        seconds = max(1, self.window_seconds)
        epoch = int(self.at.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, UTC)

    @property
    def key(self) -> str:
        """One alert per rule and subject (the alert machinery dedupes on this)."""
        return f"policy:{self.rule}:{self.subject_kind}:{self.subject}"
