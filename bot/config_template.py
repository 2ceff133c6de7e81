"""The commented configuration file `relaywatch config init` writes: every key with its default.

Keys are written commented out, so the file documents every setting while the embedded defaults
stay in force until an admin uncomments one (postconf(5) style: the text explains, the value shows
the default).
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

from bot.config import Config, toml_value

HEADER = """\
# relaywatch configuration.
#
# Every key is listed with its default value, commented out: uncomment and edit what you change.
# Any key can also be set from the environment as RELAYWATCH_<SECTION>_<KEY>.
# Check the result with:  relaywatch --config {path} config check
#
# First, the three settings that matter most:
#   [blacklist] nameservers        your own recursive resolver (public resolvers are refused by
#                                  Spamhaus and others, and their answers read as "not listed")
#   [logsummary] internal_networks your LAN: hosts there sending straight out are the
#                                  "compromised host" case
#   [logs] paths                   where your MTA's log is
"""

SECRETS_TEMPLATE = """\
# relaywatch secrets: NAME=value lines. Keep this file owner-only (chmod 600).
# Socket Mode needs the bot token (xoxb-...) and an app-level token (xapp-...);
# HTTP mode needs the bot token and the signing secret.
#SLACK_BOT_TOKEN=
#SLACK_APP_TOKEN=
#SLACK_SIGNING_SECRET=
# Spamhaus Data Query Service key, if you have one (free for low-volume use):
#SPAMHAUS_DQS_KEY=
# the PostgreSQL password for store.url (several replicas on one shared store):
#RELAYWATCH_STORE_PASSWORD=
"""


def render_config_template(path: str, secrets_file: str = "") -> str:
    """The file's text; `secrets_file`, when given, is set (not commented) in the file."""
    defaults = Config()
    out = [HEADER.format(path=path)]
    if secrets_file:
        out.append("# the secrets file (owner-only) holding the Slack tokens")
        out.append(f"secrets_file = {toml_value(secrets_file, hide=False)}")
    else:
        out.append("# a NAME=value file with the Slack tokens; must be readable by its owner only")
        out.append('#secrets_file = ""')
    for section in dataclasses.fields(defaults):
        value = getattr(defaults, section.name)
        if section.name == "secrets" or not dataclasses.is_dataclass(value):
            continue
        out.append("")
        out.append(f"[{section.name}]")
        for key in dataclasses.fields(value):
            out.extend(_commented_key(key, getattr(value, key.name)))
    return "\n".join(out) + "\n"


def _commented_key(key: dataclasses.Field[Any], default: Any) -> list[str]:
    lines = []
    doc = key.metadata.get("doc", "")
    if doc:
        lines.extend(textwrap.wrap(doc, width=96, initial_indent="# ", subsequent_indent="# "))
    lines.append(f"#{key.name} = {toml_value(default, hide=False)}")
    return lines
