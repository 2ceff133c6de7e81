"""Whole numbers typed by people or read from outside: ASCII digits only, and bounded.

`str.isdigit()` is true for superscripts ("²⁵") that `int()` then refuses, and `int()` accepts
other scripts' digits ("٢٥") that no mail server or operator means; a huge number overflows a
timedelta, a C int or an SQLite INTEGER further down. Every parser of a port, a window, an id or a
count goes through here, so a bad number is one clear error at the edge, never a traceback.
"""

from __future__ import annotations

# SQLite INTEGER is a signed 64-bit value: the largest row id any table can hold.
MAX_ROW_ID = (1 << 63) - 1


class NumberError(ValueError):
    """Not a whole number in range; the message says what was expected."""


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of 0-9 and nothing else."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_count(text: str, what: str, minimum: int = 0, maximum: int = MAX_ROW_ID) -> int:
    """`text` (surrounding spaces allowed) as an int in [minimum, maximum], else NumberError."""
    digits = text.strip()
    if not is_ascii_digits(digits):
        raise NumberError(f"{what} must be a whole number written with the digits 0-9")
    # compare lengths first: int() of thousands of digits is slow, and Python refuses past 4300
    if len(digits.lstrip("0")) > len(str(maximum)) or int(digits) > maximum:
        raise NumberError(f"{what} must be at most {maximum}")
    value = int(digits)
    if value < minimum:
        raise NumberError(f"{what} must be at least {minimum}")
    return value


def digits_or_zero(text: str) -> int:
    """For numbers read from logs: the value when `text` is plain ASCII digits, else 0."""
    return int(text) if is_ascii_digits(text) and len(text) <= 18 else 0


def parse_port(text: str, what: str = "the port") -> int:
    return parse_count(text, what, minimum=1, maximum=65535)
