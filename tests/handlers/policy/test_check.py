from __future__ import annotations

from handlers.policy.check import check_policy, parse_main_cf, tokens

SAFE = """\
compatibility_level = 3.6
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
    reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service { inet:127.0.0.1:10040, timeout=3s,
    default_action=DUNNO, policy_context=mx1 }, permit_mynetworks, reject_unauth_destination
smtpd_data_restrictions = check_policy_service { inet:127.0.0.1:10040, timeout=3s,
    default_action=DUNNO, policy_context=mx1 }
"""


def codes(result):
    return {f.code for f in result.findings}


def test_safe_configuration_has_no_findings():
    result = check_policy(SAFE, "3.8.6")
    assert result.findings == ()
    assert [s.endpoint for s in result.services] == ["inet:127.0.0.1:10040"] * 2
    assert result.services[0].options["policy_context"] == "mx1"


def test_parse_and_tokens():
    settings = parse_main_cf("# c\na = 1\nb = x,\n  y { p, q }\n")
    assert settings == {"a": "1", "b": "x, y { p, q }"}
    assert tokens(settings["b"]) == ["x", "y", "{ p, q }"]


def test_old_style_without_default_action_and_default_timeout():
    text = SAFE.replace(
        "check_policy_service { inet:127.0.0.1:10040, timeout=3s,\n    default_action=DUNNO, "
        "policy_context=mx1 }",
        "check_policy_service inet:127.0.0.1:10040",
    )
    result = check_policy(text, "3.8.6")
    assert codes(result) == {"fails_closed", "timeout_too_long"}
    fails = next(f for f in result.findings if f.code == "fails_closed")
    assert "451 4.3.5 Server configuration problem" in fails.message
    assert len(result.problems) == 4  # two services, two problems each


def test_global_default_action_and_timeout_count():
    text = (
        SAFE.replace("default_action=DUNNO, ", "").replace("timeout=3s,", "")
        + "smtpd_policy_service_default_action = DUNNO\nsmtpd_policy_service_timeout = 5s\n"
    )
    assert check_policy(text, "3.8.6").findings == ()


def test_long_timeout_flagged():
    result = check_policy(SAFE.replace("timeout=3s", "timeout=1m"), "3.8.6")
    assert codes(result) == {"timeout_too_long"}


def test_permissive_relay_restrictions():
    text = SAFE.replace(
        "permit_mynetworks, permit_sasl_authenticated,\n    reject_unauth_destination", "permit"
    )
    result = check_policy(text, "3.8.6")
    assert "relay_restrictions_permissive" in codes(result)
    # with relay control missing there, a policy service before reject_unauth_destination is unsafe
    assert "policy_before_relay_check" in codes(result)


def test_empty_relay_restrictions_with_old_compatibility():
    text = "\n".join(
        line
        for line in SAFE.splitlines()
        if not line.startswith(("compat", "smtpd_relay", "    reject"))
    )
    assert "relay_restrictions_permissive" in codes(check_policy(text, "3.8.6"))
    # compatibility_level >= 1: Postfix's default has defer_unauth_destination
    assert "relay_restrictions_permissive" not in codes(
        check_policy("compatibility_level = 2\n" + text, "3.8.6")
    )


def test_policy_in_relay_restrictions_before_the_relay_check():
    text = SAFE.replace(
        "smtpd_relay_restrictions = permit_mynetworks",
        "smtpd_relay_restrictions = check_policy_service { inet:127.0.0.1:10040, timeout=3s, "
        "default_action=DUNNO }, permit_mynetworks",
    )
    assert "policy_before_relay_check" in codes(check_policy(text, "3.8.6"))


def test_old_postfix_and_notes():
    text = "compatibility_level = 2\nsmtpd_recipient_restrictions = permit_mynetworks, " + (
        "check_policy_service { inet:127.0.0.1:10040, timeout=3s, default_action=DUNNO }\n"
    )
    result = check_policy(text, "2.11.3")
    assert codes(result) == {"postfix_too_old", "policy_after_permit", "no_data_stage"}
    assert [f.code for f in result.problems] == ["postfix_too_old"]


def test_no_policy_service():
    assert "no_policy_service" in codes(check_policy("compatibility_level = 3.6\n", "3.8.6"))


MASTER_CF = """\
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o { smtpd_recipient_restrictions = check_policy_service { inet:127.0.0.1:10040,
       timeout=3s }, permit_sasl_authenticated, reject }
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       y       60      1       pickup
"""


def test_master_cf_overrides_are_their_own_scope():
    result = check_policy(SAFE, "3.8.6", MASTER_CF)
    scoped = {(f.scope, f.code) for f in result.findings}
    assert ("submission/inet", "fails_closed") in scoped
    # the submission listener's relay rule lacks reject_unauth_destination: flagged for it alone
    assert ("submission/inet", "relay_restrictions_permissive") in scoped
    assert all(scope in ("", "submission/inet") for scope, _ in scoped)
    # the recipient list is its own, the DATA one inherited from main.cf
    assert [s.scope for s in result.services] == ["", "", "submission/inet", "submission/inet"]
    assert result.services[2].endpoint == "inet:127.0.0.1:10040"


def test_postconf_p_output_is_read_too():
    text = (
        "submission/inet/syslog_name = postfix/submission\n"
        "submission/inet/smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n"
        "submission/inet/smtpd_data_restrictions =\n"
    )
    result = check_policy(SAFE, "3.8.6", text)
    notes = [f for f in result.findings if f.code == "service_without_policy"]
    assert [f.scope for f in notes] == ["submission/inet"]
