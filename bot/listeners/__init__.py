"""Slack listeners, one package per kind of Slack input, each with one `register(app)`."""

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands, events


def register_listeners(app: AsyncApp) -> None:
    commands.register(app)
    actions.register(app)
    events.register(app)
