"""Process exit codes shared by every CLI subcommand (documented in the README)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing wrong
    PROBLEM = 1  # a problem was found: listed, open relay, suspects
    USAGE = 2  # usage or configuration error
    INCOMPLETE = 3  # a check could not complete
