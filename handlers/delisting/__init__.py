"""Delisting cases: each listing of a watched address followed until the list drops it.

plan = recheck_due(case, now)            # when to look again
step = observe(case, listed, now, policy)  # what changed, and what to say in the thread
"""

from handlers.delisting.cases import (
    CaseEvent,
    CaseStep,
    DelistCase,
    RemovalPolicy,
    next_check_at,
    observe,
    overdue_at,
)

__all__ = [
    "CaseEvent",
    "CaseStep",
    "DelistCase",
    "RemovalPolicy",
    "next_check_at",
    "observe",
    "overdue_at",
]
