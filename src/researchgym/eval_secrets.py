"""Test-split randomness that no agent can predict.

The hidden test split of a task with random parts (the games' opponents, 3-SAT's instances,
the RL tasks' evaluation episodes, the language models' look-ahead cuts) is driven by a seed.
If that seed followed from anything the agent can read (its episode seed, a task id, a public
formula), a strategy could rebuild the opponent's generator and know every move in advance.

So test seeds come from a per-run secret: 32 bytes from the operating system's random source
(`secrets`), held by the host in the run's store (never in a workspace, a sandbox, an
environment variable or the trajectory). An episode's test seed is an HMAC of its task and
episode seed under that secret: stable across the episode's evaluations and across `--resume`,
unpredictable without the secret. Validation seeds stay derived from the episode seed, so
validation is reproducible from public values as before.

To reproduce a run's test scores, hand its secret to a new run:
`researchgym run ... --eval-seed-file RUN_DIR` (or a file holding the secret in hex).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from pathlib import Path

from researchgym.errors import ResearchGymError

SECRET_BYTES = 32
STORE_FILE = "results.sqlite"
STORE_KEY = "eval_secret"


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def test_seed(secret: bytes, task_id: str, episode_seed: int) -> int:
    """The seed of the test split for one episode: 63 bits of HMAC-SHA256."""
    digest = hmac.new(secret, f"{task_id}:{episode_seed}:test".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def parse_secret(text: str, source: str) -> bytes:
    value = text.strip()
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        secret = b""
    if len(secret) != SECRET_BYTES:
        raise ResearchGymError(
            f"{source}: an evaluation secret is {2 * SECRET_BYTES} hexadecimal characters "
            f"(as `researchgym run` stores it); found {len(value)} characters that are not one"
        )
    return secret


def read_secret(path: str | Path) -> bytes:
    """The secret in `path`: a run folder (its store's secret), a store file, or a text file
    holding the secret in hex."""
    path = Path(path)
    store = path / STORE_FILE if path.is_dir() else path
    if path.is_dir() and not store.is_file():
        raise ResearchGymError(f"--eval-seed-file {path}: a folder must be a run folder (with {STORE_FILE})")
    if store.is_file() and store.read_bytes()[:16] == b"SQLite format 3\x00":
        try:
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
                row = db.execute("SELECT value FROM meta WHERE key = ?", (STORE_KEY,)).fetchone()
        except sqlite3.Error as exc:
            raise ResearchGymError(f"--eval-seed-file {store}: cannot read the store ({exc})") from None
        if row is None:
            raise ResearchGymError(f"--eval-seed-file {store}: this run has no evaluation secret (it predates them)")
        return parse_secret(row[0], str(store))
    try:
        text = store.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResearchGymError(f"--eval-seed-file {store}: cannot read it ({exc})") from None
    return parse_secret(text, f"--eval-seed-file {store}")
