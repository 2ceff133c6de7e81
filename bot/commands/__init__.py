"""Chat commands: transport-neutral handlers for /relaycheck, /blacklist, /mailsummary, /mailhealth,
/contain.

Each module here exposes NAME, USAGE, SUMMARY and `async def run(ctx, text) -> ChatReply`; the Slack
listeners and the shell adapter find them with `chat_commands()` and deliver what they return.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def chat_commands() -> dict[str, ModuleType]:
    package = importlib.import_module(__name__)
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return found
