"""The shell adapter: the same bot in a terminal (or fed by a script), no Slack needed."""

from bot.shell.adapter import ShellAdapter
from bot.shell.poster import ShellPoster, reply_text

__all__ = ["ShellAdapter", "ShellPoster", "reply_text"]
