"""`python -m bot.cli` runs the relaywatch command (used by tests and from a source checkout)."""

from bot.cli import entry

entry()
