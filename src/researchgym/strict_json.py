"""JSON that is JSON: NaN and the infinities are not, and a browser's JSON.parse (or jq, or a
strict reader) refuses a whole document for one. Written files and printed results go through
`strict_dumps`: a non-finite float becomes null, which every reader here takes as missing.

Nor is text with a lone surrogate (a code point U+D800-U+DFFF, which JSON's `\\ud800` escape and
Python's `surrogateescape` file names produce): it cannot be written as UTF-8, so one such
character in an error message an agent's code chose would make a trajectory line, or the store,
raise. `strict_dumps` and `valid_text` write each as U+FFFD."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def valid_text(text: str) -> str:
    """`text` with every surrogate code point (never valid Unicode in a str) replaced by U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, text) if _SURROGATE.search(text) else text


def without_surrogates(value: Any) -> Any:
    """A copy of `value` whose strings (keys too) are all valid_text; the rest is kept as is."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {without_surrogates(key): without_surrogates(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_surrogates(item) for item in value]
    return value


def _has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogates(key) or _has_surrogates(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_surrogates(item) for item in value)
    return False


def json_safe(value: Any) -> Any:
    """A copy of `value` with every non-finite float replaced by None (dicts, lists and tuples
    are copied; anything else is returned as it is)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def strict_dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps that never writes NaN or Infinity (a non-finite float becomes null) nor a
    surrogate (it becomes U+FFFD), so the text always encodes as UTF-8 and reads back as valid
    Unicode. A copy is made only when one is there."""
    try:
        text = json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # "Out of range float values are not JSON compliant"
        value = json_safe(value)
        text = json.dumps(value, allow_nan=False, **kwargs)
    # Unescaped, a surrogate is in the text; escaped (the default), `\\udXXX` also spells the
    # halves of a valid character beyond U+FFFF, so the value says whether one is really there.
    written = _SURROGATE.search(text) if not kwargs.get("ensure_ascii", True) else "\\ud" in text
    if written and _has_surrogates(value):
        text = json.dumps(without_surrogates(value), allow_nan=False, **kwargs)
    return text
