from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.policy.protocol import (
    MAX_LINE,
    Answers,
    MalformedRequest,
    RequestReader,
    safe_text,
)
from tests.handlers.policy.policy_requests import request_bytes


def test_a_postfix_request_parses():
    reader = RequestReader()
    [request] = reader.feed(
        request_bytes(
            sasl_username="Carol@Example.COM",
            recipient_count="3",
            size="1234",
            protocol_state="data",
            future_attribute="ignored",
        )
    )
    assert request.state == "DATA"
    assert request.sasl_username == "carol@example.com"
    assert request.client_address == "198.51.100.7"
    assert request.recipient_count == 3
    assert request.size == 1234
    assert request.sender_domain == "example.org"
    assert request.recipient_domain == "example.net"
    assert request.policy_context == "test"
    assert not reader.pending


def test_absent_empty_and_zero_values():
    data = b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient_count=\nsize=0\n" + (
        b"client_address=unknown\nsender=\n\n"
    )
    [request] = RequestReader().feed(data)
    assert request.recipient_count == 0 and request.size == 0
    assert request.client_address == "" and request.sender == "" and request.sender_domain == ""
    assert request.sasl_username == "" and request.instance == ""


def test_byte_at_a_time_and_pipelined_and_crlf():
    data = request_bytes(sender="a@x.test") + request_bytes(sender="b@y.test").replace(
        b"\n", b"\r\n"
    )
    reader = RequestReader()
    got = []
    for i in range(len(data)):
        got.extend(reader.feed(data[i : i + 1]))
    assert [r.sender for r in got] == ["a@x.test", "b@y.test"]
    assert [r.sender for r in RequestReader().feed(data)] == ["a@x.test", "b@y.test"]


def test_half_request_stays_pending():
    reader = RequestReader()
    assert reader.feed(request_bytes()[:-1]) == []
    assert reader.pending


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a line without '='
        b"=value\n\n",
        b"protocol_state=RCPT\n\n",  # not an access-policy request
        b"request=something_else\n\n",
        b"request=smtpd_access_policy\nname=" + b"x" * (MAX_LINE + 1) + b"\n\n",
    ],
)
def test_malformed(data):
    with pytest.raises(MalformedRequest):
        RequestReader().feed(data)


def test_a_1mb_line_is_rejected_before_it_is_buffered():
    reader = RequestReader()
    chunk = b"a" * 65536
    with pytest.raises(MalformedRequest):
        for _ in range(16):  # 1 MB without a newline
            reader.feed(chunk)


def test_too_many_attributes():
    many = b"".join(b"x%d=1\n" % i for i in range(300))
    with pytest.raises(MalformedRequest):
        RequestReader().feed(b"request=smtpd_access_policy\n" + many + b"\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_fuzz_never_crashes_otherwise(chunks):
    reader = RequestReader()
    try:
        for chunk in chunks:
            for request in reader.feed(chunk):
                assert isinstance(request.state, str)
    except MalformedRequest:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z_]{1,20}", fullmatch=True).filter(lambda k: k != "request"),
        st.text(alphabet=st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=50),
        max_size=30,
    ),
    st.integers(min_value=1, max_value=50),
)
def test_fuzz_well_formed_requests_parse_in_any_split(attributes, cut):
    data = request_bytes(**attributes)
    reader = RequestReader()
    got = reader.feed(data[:cut]) + reader.feed(data[cut:])
    assert len(got) == 1 and not reader.pending


def test_answers_are_from_the_allow_list_and_one_line():
    answers = Answers.from_texts(
        "evil\nline\r\naction=OK", "4.2.0 slow down", "held\x00 for\x1b[31m review"
    )
    assert answers.dunno == b"action=DUNNO\n\n"
    assert answers.reject == b"action=REJECT 5.7.1 evil line action=OK\n\n"
    assert answers.defer == b"action=DEFER 4.2.0 slow down\n\n"
    assert answers.hold == b"action=HOLD held for [31m review\n\n"
    assert answers.disconnect.startswith(b"action=421 4.7.1 ")
    for answer in answers.all():
        assert answer.count(b"\n") == 2 and answer.endswith(b"\n\n")
        assert b"action=OK" not in answer[:10]


def test_codes_of_the_wrong_class_are_replaced():
    answers = Answers.from_texts("4.7.1 wrong class", "5.7.1 wrong class", "")
    assert answers.reject == b"action=REJECT 5.7.1 wrong class\n\n"
    assert answers.defer == b"action=DEFER 4.7.1 wrong class\n\n"
    assert answers.hold == b"action=HOLD held for review\n\n"


def test_safe_text_bounds_length():
    assert len(safe_text("x" * 1000)) == 200
    assert safe_text("caf\u00e9 \u202e") == "caf"
