"""The mail-per-hour chart as a thread reply: for /mailsummary and for the digest.

The numbers come from stored mail summaries (this window's and the one a window earlier), so the
chart shows exactly what the text reports; the drawing is bot/render/chart.py.
"""

from __future__ import annotations

import re

from bot.digest.build import parse_window, previous_window_record
from bot.digest.model import Digest
from bot.render.chart import mail_chart_png
from bot.render.reply import ChatReply, ReplyFile
from bot.store import CheckRecord, Store

FILENAME = "mail-per-hour.png"


def chart_reply(current: CheckRecord, previous: CheckRecord | None) -> ChatReply | None:
    """A thread reply carrying the PNG; None when there is nothing to draw or no matplotlib."""
    if current.status == "failed":
        return None
    window = current.result.get("subject", current.subject)
    against = f" against the {window} before" if previous is not None else ""
    title = f"Mail per hour, {window}{against}"
    png = mail_chart_png(current.result, previous.result if previous else None, title)
    if png is None:
        return None
    note = title + ("" if previous is not None else " (no earlier summary to compare with yet)")
    return ChatReply(text=note, file=ReplyFile(FILENAME, title, png))


def summary_chart(store: Store, check_id: int | None) -> ChatReply | None:
    """The chart for a just-recorded mail summary, against the one a window earlier (only for a
    duration window such as 24h: a fixed date range has no stored predecessor)."""
    current = store.check(check_id) if check_id is not None else None
    if current is None:
        return None
    previous = None
    if re.fullmatch(r"\d+[mhd]", current.subject):
        history = store.checks("mailsummary", current.subject)
        previous = previous_window_record(history, current, parse_window(current.subject))
    return chart_reply(current, previous)


def digest_chart(store: Store, digest: Digest) -> ChatReply | None:
    if digest.mail is None:
        return None
    current = store.check(digest.mail.check_id)
    if current is None:
        return None
    previous_id = digest.mail.previous_check_id
    previous = store.check(previous_id) if previous_id is not None else None
    return chart_reply(current, previous)


def with_chart(reply: ChatReply, chart: ChatReply | None) -> ChatReply:
    """The reply with the chart as its first thread reply (unchanged without a chart)."""
    if chart is not None:
        reply.thread.insert(0, chart)
    return reply
