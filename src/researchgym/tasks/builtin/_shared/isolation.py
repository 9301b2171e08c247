"""An evaluator's secrets: the result token and the seed, read once from the secrets file.

Agent code no longer runs in an evaluator's sandbox (see evaluation.py), so these are defence
in depth: the file is deleted once read, and a non-dumpable evaluator keeps its memory from any
same-user process. Copied into the evaluation folder beside evaluate.py (see each task's
`evaluation.files`).
"""

from __future__ import annotations

import ctypes
import json
import os


def take_secrets() -> tuple[str | None, int | None]:
    """The result token and the evaluation seed, read once from the file named by
    RESEARCHGYM_SECRETS_FILE and deleted, so code started later cannot find them. Call it first,
    before anything of the agent's runs. (None, None) when run by hand, outside an evaluation."""
    path = os.environ.pop("RESEARCHGYM_SECRETS_FILE", None)
    if not path:
        return None, None
    try:
        with open(path) as handle:
            secrets = json.load(handle)
    except (OSError, ValueError):
        return None, None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    seed = secrets.get("seed")
    return secrets.get("token"), int(seed) if seed is not None else None


def no_memory_access() -> None:
    """PR_SET_DUMPABLE=0: a same-user process can no longer read our memory or environment."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except OSError:
        pass
