"""The policy service adapter: asyncio listeners for Postfix/Exim policy requests (issue 10).

The engine (parsing, decisions, counters) is handlers.policy; this package binds it to sockets,
the store and the clock.
"""
