"""handlers/numbers.py: ASCII digits only, bounded, and every failure a NumberError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.numbers import (
    MAX_ROW_ID,
    NumberError,
    digits_or_zero,
    is_ascii_digits,
    parse_count,
    parse_port,
)

# Digits of every script plus superscripts and the like: str.isdigit() is true for all of them.
OTHER_DIGITS = st.text(
    alphabet=st.characters(categories=("Nd", "No"), exclude_characters="0123456789"),
    min_size=1,
    max_size=8,
)


@given(st.text(max_size=30))
def test_any_text_is_a_number_in_range_or_a_number_error(text: str) -> None:
    try:
        value = parse_count(text, "the id", minimum=1, maximum=1000)
    except NumberError as exc:
        assert "the id" in str(exc)
    else:
        assert 1 <= value <= 1000
        assert is_ascii_digits(text.strip())


@given(OTHER_DIGITS)
def test_other_scripts_digits_are_refused(text: str) -> None:
    with pytest.raises(NumberError, match="digits 0-9"):
        parse_port(text)
    assert digits_or_zero(text) == 0


@settings(max_examples=50)
@given(st.integers(min_value=MAX_ROW_ID + 1, max_value=10**400))
def test_huge_numbers_are_refused_not_overflowed(number: int) -> None:
    with pytest.raises(NumberError, match="at most"):
        parse_count(str(number), "an alert id")


def test_thousands_of_digits_are_refused_quickly() -> None:
    # int() refuses more than 4300 digits with its own ValueError; the length check comes first
    with pytest.raises(NumberError, match="at most"):
        parse_count("9" * 100_000, "a check id")
    assert parse_count("000025", "the port") == 25


@pytest.mark.parametrize("text", ["²⁵", "٢٥", "¹", "2 5", "+25", "-1", "25.0", "0x19", ""])
def test_ports_that_are_not_plain_numbers(text: str) -> None:
    with pytest.raises(NumberError):
        parse_port(text)
