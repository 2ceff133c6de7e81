"""Postfix/Exim policy delegation: live counting, flood alarms and enforcement of containment."""

from handlers.policy.model import CONTAINMENT_ACTIONS, SUBJECT_KINDS, Containment, PolicyAlarm

__all__ = ["CONTAINMENT_ACTIONS", "SUBJECT_KINDS", "Containment", "PolicyAlarm"]
