"""Adapters around the domain engines: config, store, CLI, renderers, Slack and shell front ends."""
