"""Mail-log summary and compromise detection: pflogsumm's numbers for Postfix (and the same summary
for Exim), plus the accounts and hosts that look compromised, with the log lines that show it.

    report = await summarize_logs(SummaryOptions(paths=("/var/log/mail.log",)))
    report.totals(), report.suspects, report.to_dict()
"""

from handlers.logsummary.engine import SummaryOptions, summarize_logs, summarize_logs_sync
from handlers.logsummary.inputs import LogInputError, rotations, time_order
from handlers.logsummary.report import MailLogReport, SourceReport
from handlers.logsummary.suspects import Suspect, SuspectThresholds
from handlers.logsummary.timefmt import TimeSpecError, TimeWindow, window_from_specs

__all__ = [
    "LogInputError",
    "MailLogReport",
    "SourceReport",
    "SummaryOptions",
    "Suspect",
    "SuspectThresholds",
    "TimeSpecError",
    "TimeWindow",
    "rotations",
    "summarize_logs",
    "summarize_logs_sync",
    "time_order",
    "window_from_specs",
]
