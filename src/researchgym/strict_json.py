"""JSON that is JSON: NaN and the infinities are not, and a browser's JSON.parse (or jq, or a
strict reader) refuses a whole document for one. Written files and printed results go through
`strict_dumps`: a non-finite float becomes null, which every reader here takes as missing."""

from __future__ import annotations

import json
import math
from typing import Any


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
    """json.dumps that never writes NaN or Infinity: a non-finite float becomes null. The copy
    is made only when one is there."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # "Out of range float values are not JSON compliant"
        return json.dumps(json_safe(value), allow_nan=False, **kwargs)
