"""Text for a terminal: outside text may carry escape sequences, so control characters are shown.

`<`, `>` and `&` are printed as they are (a terminal gives them no meaning); ESC, CR, BEL, the other
C0 and C1 controls, DEL and the bidirectional overrides that reorder what is displayed are written
as visible escapes (`\\x1b`, `\\u202e`), so a hostile SMTP banner or log field can neither colour,
move, hide nor reorder the output. Newlines and tabs stay.
"""

from __future__ import annotations

import re

# C0 except tab and newline, DEL, C1, and the format characters that change display order or hide
# text: LRM/RLM, ALM, the embeddings and overrides, the isolates, line/paragraph separators.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _spell(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character spelled out; everything else untouched."""
    return _CONTROL.sub(_spell, text)
