"""What every Slack listener needs, handed to it through Bolt's context by one middleware."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.config import Config
from bot.delivery import BackgroundWork
from bot.dispatch import Dispatcher
from bot.slack.dedupe import SeenEvents
from bot.slack.poster import SlackPoster
from bot.store import Store

CONTEXT_KEY = "relaywatch"


@dataclass
class BotServices:
    config: Config
    store: Store
    dispatcher: Dispatcher
    poster: SlackPoster
    work: BackgroundWork = field(default_factory=BackgroundWork)
    seen_events: SeenEvents = field(default_factory=SeenEvents)
    # how often a progress message may be edited, and how long a command may take before one
    # is posted at all (fast answers go straight to the channel)
    progress_interval: float = 1.0
    progress_first_after: float = 0.3


def services_of(context: Any) -> BotServices:
    return context[CONTEXT_KEY]
