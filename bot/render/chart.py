"""A small PNG chart of a mail summary: volume, rejects and the top suspects' sending per hour,
this window against the previous one.

matplotlib is optional (the `charts` extra) and imported only when a chart is drawn, so the CLI's
start-up does not pay for it; without it there is simply no chart.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

# suspects drawn in the third panel: the highest-scoring ones that sent anything
CHART_SUSPECTS = 3
ATTACK_KINDS = frozenset({"relay_probe", "sasl_bruteforce", "sasl_bruteforce_account"})


def charts_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def hour_order(data: dict[str, Any]) -> list[int]:
    """Hours of day in log order, ending with the hour of the last line (chronological for a
    window of up to a day; a longer window's days add up per hour, as pflogsumm's table does)."""
    last = (data.get("window") or {}).get("last_line")
    try:
        end = datetime.fromisoformat(last).hour if last else 23
    except ValueError:
        end = 23
    return [(end + 1 + offset) % 24 for offset in range(24)]


def series(data: dict[str, Any] | None, column: str, order: list[int]) -> list[int] | None:
    """One per_hour column ('received', 'rejected') in the given hour order; None without data."""
    if not data or not data.get("per_hour"):
        return None
    by_hour = {row["hour"]: row.get(column, 0) for row in data["per_hour"]}
    return [int(by_hour.get(hour, 0)) for hour in order]


def suspect_series(
    current: dict[str, Any], previous: dict[str, Any] | None, order: list[int]
) -> list[tuple[str, list[int], list[int] | None]]:
    """(label, this window, previous window or None) for the top suspects that sent mail."""
    earlier = {
        (item.get("subject_type"), item.get("subject")): item.get("per_hour")
        for item in (previous or {}).get("suspects") or []
    }
    found = []
    for item in current.get("suspects") or []:
        hours = item.get("per_hour")
        if item.get("kind") in ATTACK_KINDS or not hours or not any(hours):
            continue
        before = earlier.get((item.get("subject_type"), item.get("subject")))
        found.append(
            (
                str(item.get("subject")),
                [int(hours[hour]) for hour in order],
                [int(before[hour]) for hour in order] if before else None,
            )
        )
        if len(found) == CHART_SUSPECTS:
            break
    return found


def mail_chart_png(
    current: dict[str, Any], previous: dict[str, Any] | None, title: str
) -> bytes | None:
    """The chart as PNG bytes; None when matplotlib is not installed or there is nothing to draw."""
    order = hour_order(current)
    received = series(current, "received", order)
    if received is None:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return None
    rejected = series(current, "rejected", order)
    suspects = suspect_series(current, previous, order)
    panels = 3 if suspects else 2
    # a Figure of its own (not pyplot): no global figure state, safe in a long-running bot
    figure = Figure(figsize=(8, 2.2 * panels + 0.6), dpi=100, layout="constrained")
    axes = figure.subplots(panels, 1, sharex=True)
    labels = [f"{hour:02d}" for hour in order]
    x = list(range(24))
    for ax, column, name in ((axes[0], "received", "received"), (axes[1], "rejected", "rejected")):
        now_values = received if column == "received" else rejected
        ax.bar(x, now_values, color="#1d4f6e", label="this window")
        before = series(previous, column, order)
        if before is not None:
            ax.step(x, before, where="mid", color="#d08c1f", label="previous window")
        ax.set_ylabel(f"{name}\nper hour")
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    if suspects:
        ax = axes[2]
        for index, (label, values, before) in enumerate(suspects):
            colour = f"C{index}"
            ax.plot(x, values, color=colour, marker=".", label=label)
            if before is not None:
                ax.plot(x, before, color=colour, linestyle="--", label=f"{label} (previous)")
        ax.set_ylabel("suspects' messages\nper hour")
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    axes[-1].set_xticks(x[::2], labels[::2])
    axes[-1].set_xlabel("hour of day (log time)")
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
