"""Classifying watch-list values; garbage always gets a one-line error, never a crash."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.watchlist import WatchValueError, classify, split_host_port


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("192.0.2.1", "ip", "192.0.2.1"),
        ("2001:DB8::1", "ip", "2001:db8::1"),
        ("192.0.2.0/24", "cidr", "192.0.2.0/24"),
        ("192.0.2.9/24", "cidr", "192.0.2.0/24"),
        ("192.0.2.9/32", "ip", "192.0.2.9"),
        ("Example.com", "domain", "example.com"),
        ("mx.example.com:25", "server", "mx.example.com:25"),
        ("192.0.2.1:587", "server", "192.0.2.1:587"),
        ("[2001:db8::25]:25", "server", "[2001:db8::25]:25"),
    ],
)
def test_classify_infers_kind(text: str, kind: str, value: str) -> None:
    assert (classify(text).kind, classify(text).value) == (kind, value)


def test_explicit_server_kind_for_bare_name() -> None:
    assert classify("MX.example.com", "server").value == "mx.example.com"


@pytest.mark.parametrize("text", ["", "   ", "foo", "300.1.1.1", "a..b", "x.com:99999", "-a.com"])
def test_rejects_garbage(text: str) -> None:
    with pytest.raises(WatchValueError):
        classify(text)


def test_split_host_port() -> None:
    assert split_host_port("[::1]:2525") == ("::1", 2525)
    assert split_host_port("mx.example.com") == ("mx.example.com", None)


@given(st.text(max_size=80))
def test_any_text_classifies_or_raises_one_line_error(text: str) -> None:
    try:
        item = classify(text)
    except WatchValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert item.kind in ("ip", "cidr", "domain", "server")
