from bot.listeners.events import mention_command


def test_mention_text_becomes_a_command_line() -> None:
    assert mention_command("<@U0BOT> blacklist 192.0.2.1") == "blacklist 192.0.2.1"
    assert mention_command("<@U0BOT|relaywatch> /relaycheck mx.example.com:25") == (
        "relaycheck mx.example.com:25"
    )
    # Slack links bare domains in messages; the command wants the name the user typed
    assert mention_command("<@U0BOT> blacklist <http://example.com|example.com>") == (
        "blacklist example.com"
    )
    assert mention_command("<@U0BOT>") == "mailhealth help"
