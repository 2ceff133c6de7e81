"""The Slack Web API client: configurable base URL (GovSlack, tests).

Retries (429 with Retry-After, 5xx, dropped connections) are SlackPoster's, bounded and with an
injectable sleep; the client itself does not retry, so the two never multiply.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config
from bot.dispatch import MemberLookup

API_TIMEOUT_SECONDS = 30


def api_base_url(config: Config, env: dict[str, str] | None = None) -> str:
    """SLACK_API_URL (environment) wins over `[slack] api_url`; always ends with a slash."""
    env = dict(os.environ) if env is None else env
    url = env.get("SLACK_API_URL") or config.slack.api_url or "https://slack.com/api/"
    return url if url.endswith("/") else url + "/"


def web_client(config: Config, env: dict[str, str] | None = None) -> AsyncWebClient:
    return AsyncWebClient(
        token=config.secrets.slack_bot_token or None,
        base_url=api_base_url(config, env),
        timeout=API_TIMEOUT_SECONDS,
        retry_handlers=[],
    )


def usergroup_lookup(client: AsyncWebClient) -> MemberLookup:
    """Members of a user group via usergroups.users.list (needs the usergroups:read scope)."""

    async def members(usergroup: str) -> Iterable[str]:
        response = await client.usergroups_users_list(usergroup=usergroup)
        return list(response.get("users") or [])

    return members
