"""The Slack Web API client: configurable base URL (GovSlack, tests) and 429 retries."""

from __future__ import annotations

import os
from collections.abc import Iterable

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config
from bot.dispatch import MemberLookup

# Slack answers 429 with Retry-After; slack_sdk's handler sleeps that long and tries again.
RATE_LIMIT_RETRIES = 3
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
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )


def usergroup_lookup(client: AsyncWebClient) -> MemberLookup:
    """Members of a user group via usergroups.users.list (needs the usergroups:read scope)."""

    async def members(usergroup: str) -> Iterable[str]:
        response = await client.usergroups_users_list(usergroup=usergroup)
        return list(response.get("users") or [])

    return members
