"""Slack transport: the Web API client, the ChatPoster over it, and who-is-admin lookups."""

from bot.slack.client import api_base_url, usergroup_lookup, web_client
from bot.slack.poster import SlackPoster

__all__ = ["SlackPoster", "api_base_url", "usergroup_lookup", "web_client"]
