"""Postfix-shaped policy requests for the engine tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.policy.model import Containment

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def request_bytes(**attributes: object) -> bytes:
    """A request as Postfix writes it (request=smtpd_access_policy first, then the attributes)."""
    base: dict[str, object] = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "198.51.100.7",
        "client_name": "unknown",
        "helo_name": "client.example",
        "sender": "someone@example.org",
        "recipient": "dest@example.net",
        "recipient_count": "0",
        "queue_id": "",
        "instance": "1a2b.3c4d.1",
        "size": "0",
        "sasl_method": "",
        "sasl_username": "",
        "sasl_sender": "",
        "ccert_subject": "",
        "encryption_protocol": "",
        "policy_context": "test",
    }
    base.update({key: value for key, value in attributes.items()})
    lines = [f"{key}={value}" for key, value in base.items() if value is not None]
    return ("\n".join(lines) + "\n\n").encode()


def entry(
    kind: str,
    subject: str,
    action: str,
    entry_id: int = 1,
    limit: int = 0,
    cut: bool = False,
    expires: timedelta = timedelta(hours=24),
    released: bool = False,
) -> Containment:
    return Containment(
        id=entry_id,
        subject_kind=kind,
        subject=subject,
        action=action,
        reason="test",
        set_by="tester",
        set_at=T0,
        expires_at=T0 + expires,
        limit_per_hour=limit,
        cut_sessions=cut,
        released_at=T0 if released else None,
    )
