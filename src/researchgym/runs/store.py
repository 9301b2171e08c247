"""One SQLite database per run: runs, episodes, scores, and where the trajectories are.

WAL mode, so readers (reports, a viewer) never block the runner; every write is one
transaction, so a crash (even SIGKILL) leaves either the whole episode or none of it.
Migrations are numbered: `MIGRATIONS[i]` brings a database from version i to i + 1.

Schema (version 1):
    meta(key TEXT PRIMARY KEY, value TEXT)            -- schema_version, created
    runs(id TEXT PRIMARY KEY, created REAL, config TEXT)
    episodes(id TEXT PRIMARY KEY,                     -- task|agent|model|seed
             run_id TEXT, task TEXT, agent TEXT, model TEXT, seed INTEGER,
             status TEXT,                              -- planned | running | finished | failed | interrupted
             exit_status TEXT, final_score REAL, steps INTEGER,
             started REAL, finished REAL, duration_s REAL,
             cost REAL, cost_known INTEGER, tokens_sent INTEGER, tokens_received INTEGER,
             trajectory TEXT, error TEXT)
    scores(episode_id TEXT, step INTEGER, kind TEXT, split TEXT, metric TEXT, value REAL, status TEXT)

Version 2 adds ML-Bench judgments:
    mlbench(run_id, sample, repo, setting, model, attempt,   -- primary key
            language, code, reply, arguments_ok, type_ok, execution_ok, passed,
            detail TEXT (JSON of the three checks), cost REAL, created REAL)
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from researchgym.errors import ResearchGymError
from researchgym.strict_json import valid_text

DB_NAME = "results.sqlite"

MIGRATIONS = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    CREATE TABLE runs (id TEXT PRIMARY KEY, created REAL, config TEXT);
    CREATE TABLE episodes (
        id TEXT PRIMARY KEY, run_id TEXT, task TEXT, agent TEXT, model TEXT, seed INTEGER,
        status TEXT NOT NULL DEFAULT 'planned', exit_status TEXT, final_score REAL, steps INTEGER,
        started REAL, finished REAL, duration_s REAL, cost REAL, cost_known INTEGER,
        tokens_sent INTEGER, tokens_received INTEGER, trajectory TEXT, error TEXT);
    CREATE TABLE scores (episode_id TEXT, step INTEGER, kind TEXT, split TEXT, metric TEXT, value REAL,
                         status TEXT);
    CREATE INDEX scores_by_episode ON scores (episode_id);
    """,
    # 2: ML-Bench judgments, one row per (sample, setting, model, attempt); every check kept.
    """
    CREATE TABLE mlbench (
        run_id TEXT, sample TEXT, repo TEXT, setting TEXT, model TEXT, attempt INTEGER,
        language TEXT, code TEXT, reply TEXT, arguments_ok INTEGER, type_ok INTEGER, execution_ok INTEGER,
        passed INTEGER, detail TEXT, cost REAL, created REAL,
        PRIMARY KEY (run_id, sample, setting, model, attempt));
    """,
]


def episode_id(task: str, agent: str, model: str | None, seed: int) -> str:
    return f"{task}|{agent}|{model or '-'}|{seed}"


class NonFiniteScoreError(ResearchGymError, ValueError):
    """A score that is NaN or infinite was about to be recorded. Evaluation refuses such results
    (`evaluation_non_finite`), so this is a bug upstream; nothing of the episode is written."""


def _check_scores(eid: str, result: dict[str, Any]) -> None:
    """Every number `record` would store as a score is finite (defence in depth: a NaN or an
    infinity in the store breaks the AUP, the reports and the viewer's JSON)."""
    found = [("final_score", result.get("final_score"))]
    for entry in result.get("scores") or []:
        for split in ("validation", "test"):
            score = entry.get(split)
            if isinstance(score, dict):
                found.append((f"the {split} score of step {entry.get('step')}", score.get("value")))
    for where, value in found:
        if isinstance(value, float) and not math.isfinite(value):
            raise NonFiniteScoreError(
                f"episode {eid}: refusing to record {where} = {value!r}: a score must be a finite number"
            )


class Store:
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path / DB_NAME if path.is_dir() or not path.suffix else path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction() as db:
            exists = db.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone()
            version = (
                int(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]) if exists else 0
            )
            for step in MIGRATIONS[version:]:
                for statement in filter(str.strip, step.split(";")):
                    db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(len(MIGRATIONS)),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------- writes
    def eval_secret(self, given: bytes | None = None) -> bytes:
        """The run's evaluation secret (see eval_secrets.py): the stored one, else `given` or a
        fresh one, stored now. A `given` secret that differs from a stored one is refused: a
        run's test seeds never change halfway."""
        from researchgym.eval_secrets import STORE_KEY, new_secret, parse_secret

        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (STORE_KEY,)).fetchone()
            if row is not None:
                stored = parse_secret(row[0], str(self.path))
                if given is not None and given != stored:
                    raise ResearchGymError(
                        f"{self.path} already has another evaluation secret: a run keeps its "
                        "test seeds (resume it without --eval-seed-file)"
                    )
                return stored
            secret = given if given is not None else new_secret()
            db.execute("INSERT INTO meta VALUES (?, ?)", (STORE_KEY, secret.hex()))
            return secret

    def add_run(self, run_id: str, config: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?)", (run_id, time.time(), json.dumps(config)))

    def plan(self, run_id: str, rows: list[tuple[str, str, str | None, int]]) -> None:
        with self.transaction() as db:
            for task, agent, model, seed in rows:
                db.execute(
                    "INSERT OR IGNORE INTO episodes (id, run_id, task, agent, model, seed) VALUES (?,?,?,?,?,?)",
                    (episode_id(task, agent, model, seed), run_id, task, agent, model, seed),
                )

    def mark_running(self, eid: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE episodes SET status='running', started=? WHERE id=?", (time.time(), eid))

    def record(self, eid: str, result: dict[str, Any], metric: str) -> None:
        """Store a finished episode and all its scores, atomically. A score that is NaN or
        infinite is refused (NonFiniteScoreError) and nothing is written."""
        _check_scores(eid, result)
        stats = result.get("model_stats") or {}
        with self.transaction() as db:
            db.execute(
                "UPDATE episodes SET status='finished', exit_status=?, final_score=?, steps=?, finished=?, "
                "duration_s=?,"
                " cost=?, cost_known=?, tokens_sent=?, tokens_received=?, trajectory=?, error=? WHERE id=?",
                (
                    _text(result.get("exit_status")),
                    result.get("final_score"),
                    result.get("steps"),
                    time.time(),
                    result.get("duration_s"),
                    stats.get("total_cost", 0.0),
                    int(stats.get("cost_known", True)),
                    stats.get("tokens_sent", 0),
                    stats.get("tokens_received", 0),
                    _text(result.get("trajectory")),
                    _text(result.get("error")),
                    eid,
                ),
            )
            db.execute("DELETE FROM scores WHERE episode_id=?", (eid,))
            for entry in result.get("scores") or []:
                for split in ("validation", "test"):
                    score = entry.get(split)
                    if isinstance(score, dict):
                        db.execute(
                            "INSERT INTO scores VALUES (?,?,?,?,?,?,?)",
                            (
                                eid,
                                entry.get("step"),
                                entry.get("kind"),
                                split,
                                metric,
                                score.get("value"),
                                _text(score.get("status", "scored")),
                            ),
                        )
                if entry.get("status"):
                    db.execute(
                        "INSERT INTO scores VALUES (?,?,?,?,?,?,?)",
                        (eid, entry.get("step"), entry.get("kind"), None, metric, None, _text(entry["status"])),
                    )

    def record_mlbench(self, run_id: str, row: dict[str, Any]) -> None:
        """One judged ML-Bench answer (replacing an earlier one for the same attempt)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO mlbench VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    row["sample"],
                    row["repo"],
                    row["setting"],
                    row["model"],
                    row["attempt"],
                    row.get("language"),
                    row.get("code"),
                    row.get("reply"),
                    int(row["arguments_ok"]),
                    int(row["type_ok"]),
                    int(row["execution_ok"]),
                    int(row["passed"]),
                    json.dumps(row.get("detail", {})),
                    row.get("cost"),
                    time.time(),
                ),
            )

    def mlbench_rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        args: tuple[str, ...] = ()
        query = "SELECT * FROM mlbench"
        if run_id:
            query, args = query + " WHERE run_id=?", (run_id,)
        return [dict(row) for row in self._db.execute(query + " ORDER BY sample, setting, model, attempt", args)]

    def mark_interrupted(self, eid: str) -> None:
        """An episode the run stopped (Ctrl-C) before it ended: no result; resume plays it again."""
        with self.transaction() as db:
            db.execute(
                "UPDATE episodes SET status='interrupted', error=?, finished=? WHERE id=?",
                ("stopped before it ended (Ctrl-C); resume plays it again", time.time(), eid),
            )

    def mark_failed(self, eid: str, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE episodes SET status='failed', error=?, finished=? WHERE id=?",
                (valid_text(error), time.time(), eid),
            )

    # ------------------------------------------------------------------ reads
    def runs(self) -> list[dict[str, Any]]:
        """Every run in the store: id, created, config (parsed; None if unreadable)."""
        rows = []
        for row in self._db.execute("SELECT * FROM runs ORDER BY created"):
            try:
                config = json.loads(row["config"]) if row["config"] else None
            except ValueError:
                config = None
            rows.append({"id": row["id"], "created": row["created"], "config": config})
        return rows

    def episodes(self, status: str | None = None) -> list[dict[str, Any]]:
        args: tuple[str, ...] = ()
        query = "SELECT * FROM episodes"
        if status:
            query, args = query + " WHERE status=?", (status,)
        return [dict(row) for row in self._db.execute(query + " ORDER BY id", args)]

    def score_entries(self, eid: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Scores as trajectories write them: episode id -> one entry per scored step,
        `{"step", "kind", "validation": {"value"}, "test": {"value"}}`."""
        by_step: dict[str, dict[int, dict[str, Any]]] = {}
        for score in self.scores(eid):
            entry = by_step.setdefault(score["episode_id"], {}).setdefault(
                score["step"], {"step": score["step"], "kind": score["kind"]}
            )
            if score["split"]:
                entry[score["split"]] = {"value": score["value"]}
        return {episode: list(entries.values()) for episode, entries in by_step.items()}

    def scores(self, eid: str | None = None) -> list[dict[str, Any]]:
        args: tuple[str, ...] = ()
        query = "SELECT * FROM scores"
        if eid:
            query, args = query + " WHERE episode_id=?", (eid,)
        return [dict(row) for row in self._db.execute(query + " ORDER BY episode_id, step, split", args)]


def _text(value: Any) -> Any:
    """A text field as SQLite can bind it: a string with a surrogate (an error message an agent's
    code chose) would make the whole record raise, and the finished episode would be lost."""
    return valid_text(value) if isinstance(value, str) else value
