"""Text that looks like a secret (a Slack token, a Spamhaus DQS key, a long random string).

A token pasted into the wrong config key must not be echoed back in the error about that key:
error messages end up in terminals, logs and tickets. `hide_secrets` replaces each such value in a
message and says where secrets belong instead.
"""

from __future__ import annotations

import math
import re
from collections import Counter

SECRET_ADVICE = "the value looks like a secret; secrets go in the environment or secrets_file"
HIDDEN = "<hidden>"

_SLACK_TOKEN = re.compile(r"\b(?:xox[abprs]|xapp)-[A-Za-z0-9-]{6,}", re.ASCII)
# Spamhaus DQS keys are 26 characters of lower-case letters and digits
_DQS_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?=[a-z0-9]*[0-9])(?=[a-z0-9]*[a-z])[a-z0-9]{26}(?![A-Za-z0-9])"
)
# a signing secret and many API keys: 32 or more hex digits
_HEX = re.compile(
    r"(?<![A-Za-z0-9])(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{32,}", re.ASCII
)
# any long run of token characters; kept only when it mixes letters and digits and is random
_CANDIDATE = re.compile(r"[A-Za-z0-9_+=-]{24,}", re.ASCII)
# share of the most a string of its length could have: random tokens score about 0.85-0.95,
# words and names joined by dashes well below
MIN_ENTROPY_SHARE = 0.75


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random_looking(word: str) -> bool:
    parts = [part for part in re.split(r"[_-]", word) if part]
    if len(parts) > 1 and all(p.isalpha() or (p.isdigit() and len(p) <= 4) for p in parts):
        return False  # words joined by _ or - (a file or test name), not a token
    has_digit = any(ch.isdigit() for ch in word)
    has_letter = any(ch.isalpha() for ch in word)
    ceiling = math.log2(min(len(word), 64))
    return has_digit and has_letter and _entropy(word) >= MIN_ENTROPY_SHARE * ceiling


def looks_like_secret(text: str) -> bool:
    return bool(
        _SLACK_TOKEN.search(text)
        or _DQS_KEY.search(text)
        or _HEX.search(text)
        or any(_random_looking(m.group(0)) for m in _CANDIDATE.finditer(text))
    )


def hide_secrets(message: str) -> str:
    """`message` with every secret-looking value replaced, plus the advice; unchanged if none."""
    if not looks_like_secret(message):
        return message
    hidden = _SLACK_TOKEN.sub(HIDDEN, message)
    hidden = _DQS_KEY.sub(HIDDEN, hidden)
    hidden = _HEX.sub(HIDDEN, hidden)
    hidden = _CANDIDATE.sub(lambda m: HIDDEN if _random_looking(m.group(0)) else m.group(0), hidden)
    return f"{hidden} ({SECRET_ADVICE})"
