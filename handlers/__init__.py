"""The domain engines of relaywatch: relay testing, blocklist lookup, mail-log summary.

Pure async code that takes plain inputs and returns typed results; nothing here knows about Slack,
the CLI or the store.
"""
