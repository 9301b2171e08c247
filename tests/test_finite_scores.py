"""Non-finite numbers never become scores, and never break the viewer's or the report's output.

An evaluator whose result holds NaN, an infinity, a number beyond a float's range or a score
spelled "nan" fails the evaluation as `evaluation_non_finite` (naming the metric): the episode
ends with that status and reward -1, and nothing non-finite reaches the store or the trajectory.
The store refuses a non-finite score on its own too. A run folder that already holds NaN and
infinities (recorded before this, or imported) is still served and reported, as strict JSON.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import write_task
from viewer_support import get

from researchgym.analysis.mlbench import answer_key
from researchgym.analysis.report import build_report
from researchgym.errors import EvaluationError
from researchgym.evaluation import last_json_object, metric_value, read_result_file, refuse_non_finite
from researchgym.runs.layout import safe_name
from researchgym.runs.runner import Method, RunConfig, Runner
from researchgym.runs.store import DB_NAME, NonFiniteScoreError, Store
from researchgym.tasks.loader import load_task_file
from researchgym.viewer import ViewerServer, export_bundle


def _refuse(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str | bytes) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (Python's accepts them)."""
    return json.loads(text, parse_constant=_refuse)


# ------------------------------------------------------------------ reading the result
@pytest.mark.parametrize(
    "text, where",
    [
        ('{"accuracy": NaN}', "accuracy = nan"),
        ('{"accuracy": Infinity}', "accuracy = inf"),
        ('{"accuracy": -Infinity}', "accuracy = -inf"),
        ('{"accuracy": 1e999}', "accuracy = inf"),
        ('{"accuracy": -1' + "0" * 400 + "}", "accuracy = -inf"),
        ('{"accuracy": 0.5, "details": {"returns": [1.0, NaN]}}', "details.returns[1] = nan"),
    ],
)
def test_a_result_with_a_non_finite_number_is_refused_naming_where(tmp_path, text, where):
    folder = tmp_path / "result"
    folder.mkdir()
    (folder / "result.json").write_text(text)
    for metrics in (last_json_object(f"noise\n{text}\n"), read_result_file(folder)):
        assert metrics is not None
        with pytest.raises(EvaluationError) as caught:
            refuse_non_finite(metrics)
        assert caught.value.status == "evaluation_non_finite" and where in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        '{"x": ' + "[" * 100 + "NaN" + "]" * 100 + "}",  # nesting past the bound: malformed, as before
        '{"accuracy": NaN',  # not JSON at all
        '{"accuracy": nan}',  # not JSON's spelling either
    ],
)
def test_malformed_results_stay_format_errors(tmp_path, text):
    assert last_json_object(text + "\n") is None


def test_the_score_as_a_non_finite_string_or_overflowing_its_reward_is_non_finite(tmp_path):
    task = load_task_file(write_task(tmp_path / "tasks") / "task.yaml")  # accuracy, maximise, baseline 0.5
    for value in ("nan", "Infinity", " -inf "):
        with pytest.raises(EvaluationError) as caught:
            metric_value(task, {"accuracy": value})
        assert caught.value.status == "evaluation_non_finite" and "'accuracy'" in str(caught.value)
    with pytest.raises(EvaluationError) as caught:  # (1.7e308 - 0.5) / 0.5 overflows
        metric_value(task, {"accuracy": 1.7e308})
    assert caught.value.status == "evaluation_non_finite" and "gain over the baseline" in str(caught.value)
    assert metric_value(task, {"accuracy": 1e300}) == 1e300
    with pytest.raises(EvaluationError) as caught:
        metric_value(task, {"accuracy": "0.5"})  # a number in a string is still no number
    assert caught.value.status == "evaluation_format_error"


# ------------------------------------------------------------------ whole episodes
#: Variant -> the evaluator's lines that set `text`, the result it reports; and the metric named.
EVALUATORS = {
    "nan": ('text = json.dumps({"accuracy": float("nan")})', "accuracy = nan"),
    "plus-inf": ('text = json.dumps({"accuracy": float("inf"), "split": "x"})', "accuracy = inf"),
    "minus-inf": ('text = json.dumps({"accuracy": float("-inf")})', "accuracy = -inf"),
    # An RL-style mean of returns that overflows when summed: -inf, and NaN spread.
    "overflowing-sum": (
        "returns = [-1.5e308, -1.5e308, -1.5e308]\n"
        "mean = sum(returns) / len(returns)\n"
        'text = json.dumps({"accuracy": mean, "spread": mean - mean})',
        "accuracy = -inf, spread = nan",
    ),
    "literal-nan-text": ('text = \'{"accuracy": 0.5, "loss": NaN}\'', "loss = nan"),
    "string-nan": ('text = \'{"accuracy": "nan"}\'', "'accuracy'"),
    "string-infinity": ('text = \'{"accuracy": "Infinity"}\'', "'accuracy'"),
    "huge-score": ('text = json.dumps({"accuracy": 1.7e308})', "gain over the baseline"),
    "channel-nan": ('text = json.dumps({"accuracy": float("nan")})', "accuracy = nan"),
    "channel-overflowing-sum": (
        'mean = sum([1.5e308] * 3) / 3\ntext = json.dumps({"accuracy": 0.5, "Reward Mean": mean})',
        "Reward Mean = inf",
    ),
}


def _task(root: Path, variant: str) -> Path:
    task = write_task(root / variant)
    code, _ = EVALUATORS[variant]
    (task / "eval" / "evaluate.py").write_text(
        "import json, os\n"
        f"{code}\n"
        "open(os.environ['RESEARCHGYM_RESULT_FILE'], 'w').write(text)  # read with `result: channel`\n"
        "print(text)  # read with `result: stdout`\n"
    )
    yaml = (task / "task.yaml").read_text().replace("id: tiny", f"id: tiny-{variant}")
    if variant.startswith("channel-"):
        yaml = yaml.replace("  timeout_s: 60\n", "  timeout_s: 60\n  result: channel\n")
    (task / "task.yaml").write_text(yaml)
    return task


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """One run of the baseline agent (run, validate, submit) on a task per variant."""
    root = tmp_path_factory.mktemp("finite")
    tasks = [str(_task(root / "tasks", variant)) for variant in EVALUATORS]
    config = RunConfig(tasks=tasks, methods=[Method("baseline")], seeds=[0], max_episodes=1)
    counts = Runner(root / "run", config).run()
    assert counts == {"finished": len(EVALUATORS)}, counts
    store = Store(root / "run")
    try:
        rows = {Path(row["task"]).parent.name: row for row in store.episodes()}  # tasks/<variant>/tiny
    finally:
        store.close()
    return root / "run", rows


@pytest.mark.parametrize("variant", list(EVALUATORS))
def test_a_non_finite_result_ends_the_episode_as_evaluation_non_finite(played, variant):
    run, rows = played
    row = rows[variant]
    assert row["status"] == "finished" and row["exit_status"] == "evaluation_non_finite", row
    assert row["final_score"] is None
    records = [strict_json(line) for line in Path(row["trajectory"]).read_text().splitlines()]
    end = records[-1]
    assert end["type"] == "end" and end["exit_status"] == "evaluation_non_finite"
    _, named = EVALUATORS[variant]
    failures = [entry for entry in end["scores"] if entry.get("status") == "evaluation_non_finite"]
    assert [entry["kind"] for entry in failures] == ["validate", "submit"]
    assert all(named in entry["error"] for entry in failures), failures
    steps = [record for record in records if record["type"] == "step"]
    assert steps[-1]["reward"] == -1.0 and all(step["reward"] in (0.0, -1.0) for step in steps)
    assert "Validation failed (evaluation_non_finite)" in steps[-2]["observation"]


def test_no_non_finite_number_anywhere_in_the_store(played):
    run, rows = played
    database = sqlite3.connect(run / DB_NAME)
    try:
        tables = [name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for record in database.execute(f"SELECT * FROM {table}"):
                for value in record:
                    assert not (isinstance(value, float) and not math.isfinite(value)), (table, record)
                    if isinstance(value, str) and value[:1] in "{[":
                        strict_json(value)
        statuses = {status for (status,) in database.execute("SELECT status FROM scores")}
    finally:
        database.close()
    assert statuses == {"evaluation_non_finite"}


# ------------------------------------------------------------------ the store's own check
@pytest.mark.parametrize(
    "result",
    [
        {"exit_status": "submitted", "final_score": math.inf, "scores": []},
        {"exit_status": "submitted", "final_score": 0.5, "scores": [{"step": 2, "test": {"value": math.nan}}]},
        {"exit_status": "submitted", "final_score": 0.5, "scores": [{"step": 2, "validation": {"value": -math.inf}}]},
    ],
)
def test_the_store_refuses_to_record_a_non_finite_score(tmp_path, result):
    store = Store(tmp_path / "run")
    try:
        store.plan("run", [("tiny", "baseline", None, 0)])
        with pytest.raises(NonFiniteScoreError, match="finite"):
            store.record("tiny|baseline|-|0", result, "accuracy")
        [row] = store.episodes()
        assert row["status"] == "planned" and row["final_score"] is None and store.scores() == []
    finally:
        store.close()


# ------------------------------------------------------------------ old runs that hold them
def _trajectory(path: Path, task: str, final: str) -> None:
    """A trajectory as an older version could write it: NaN and infinities in it (each
    `"@NaN@"` below becomes the bare literal Python's json.dumps writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {"v": 1, "type": "reset", "task": task, "seed": 0, "prompt": "p", "run_info": {"agent": "old"}},
        {
            "v": 1,
            "type": "step",
            "step": 1,
            "action": "validate",
            "observation": "Validation score: accuracy = nan",
            "reward": "@-Infinity@",
            "step_s": "@NaN@",
            "scores": [
                {"step": 1, "kind": "validate", "validation": {"value": "@NaN@"}, "test": {"value": "@Infinity@"}}
            ],
            "model_turns": [{"input_tokens": "@Infinity@", "output_tokens": 3, "cost": "@NaN@"}],
            "model_stats": {"total_cost": "@NaN@", "tokens_sent": "@Infinity@", "tokens_received": 1},
        },
        {"v": 1, "type": "end", "exit_status": "submitted", "steps": 1, "final_score": f"@{final}@", "scores": []},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    path.write_text(re.sub(r'"@(-?Infinity|NaN)@"', r"\1", text))


@pytest.fixture
def polluted_run(tmp_path) -> Path:
    run = tmp_path / "old-run"
    store = Store(run)
    try:
        store.plan("old", [("tiny", "old", None, 0), ("tiny", "other", None, 0)])
        store.record_mlbench(
            "old",
            {
                "sample": "s1",
                "repo": "r",
                "setting": "x",
                "model": "m",
                "attempt": 0,
                "arguments_ok": 1,
                "type_ok": 1,
                "execution_ok": 1,
                "passed": 1,
                "cost": 0.1,
                "detail": {"seconds": math.nan},  # written as NaN: json.dumps allows it
            },
        )
    finally:
        store.close()
    first, second = run / "traj" / "first.jsonl", run / "traj" / "second.jsonl"
    _trajectory(first, "tiny", "-Infinity")
    _trajectory(second, "tiny", "NaN")
    database = sqlite3.connect(run / DB_NAME)
    with database:
        database.execute(
            "INSERT INTO runs VALUES ('old', 0, ?)",
            ('{"task_facts": {"tiny": {"direction": "maximize", "baseline": NaN, "metric": "accuracy"}}}',),
        )
        database.execute(
            "UPDATE episodes SET status='finished', exit_status='submitted', final_score=?, cost=?, steps=1,"
            " trajectory=? WHERE agent='old'",
            (-math.inf, math.inf, str(first)),
        )
        database.execute(  # still running: the viewer reads its trajectory, NaN final score and all
            "UPDATE episodes SET status='running', trajectory=? WHERE agent='other'", (str(second),)
        )
        database.executemany(
            "INSERT INTO scores VALUES (?,?,?,?,?,?,?)",
            [
                ("tiny|old|-|0", 1, "validate", "validation", "accuracy", math.inf, "scored"),
                ("tiny|old|-|0", 1, "validate", "test", "accuracy", -math.inf, "scored"),
            ],
        )
        database.execute("UPDATE mlbench SET cost=?", (math.inf,))
    database.close()
    return run


def test_an_old_run_with_non_finite_numbers_is_served_as_strict_json(polluted_run, tmp_path):
    server = ViewerServer(polluted_run, port=0).start()
    try:
        status, body = get(server, "/api/overview")
        assert status == 200
        overview = strict_json(body)
        by_agent = {episode["id"].split("|")[1]: episode for episode in overview["episodes"]}
        assert by_agent["old"]["final_score"] is None and by_agent["old"]["cost"] is None
        assert by_agent["old"]["scores"] == [
            {"step": 1, "kind": "validate", "validation": {"value": None}, "test": {"value": None}}
        ]
        assert by_agent["other"]["final_score"] is None
        assert overview["summary"]["baselines"] == {"tiny": None}
        paths = [f"/api/episodes/{episode['key']}" for episode in overview["episodes"]]
        paths += ["/api/mlbench", "/api/mlbench/answers"]
        store = Store(polluted_run)
        try:
            paths += [f"/api/mlbench/answers/{answer_key(row)}" for row in store.mlbench_rows()]
        finally:
            store.close()
        for path in paths:
            status, body = get(server, path)
            assert status == 200, (path, body[:200])
            strict_json(body)
        episode = strict_json(get(server, f"/api/episodes/{safe_name('tiny|old|-|0')}")[1])
        [step] = episode["steps"]
        assert step["input_tokens"] == 0 and step["output_tokens"] == 3 and step["cost"] == 0.0
        assert step["step_s"] is None and episode["end"]["final_score"] is None
    finally:
        server.stop()
    index = export_bundle(polluted_run, tmp_path / "bundle")
    script = (index.parent / "static" / "data.js").read_text()
    bundle = strict_json(script.removeprefix("window.RG_BUNDLE = ").removesuffix(";\n"))
    assert bundle["overview"]["episodes"] and bundle["mlbench"]["answers"][0]["seconds"] is None


def test_an_old_run_with_non_finite_numbers_is_reported(polluted_run, tmp_path):
    out = build_report(polluted_run, tmp_path / "report")
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert "| tiny |" in markdown and "## AUP and ranks" in markdown and "<table>" in page
    for text in (markdown, page):
        assert not re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE), text


def test_a_built_in_evaluator_reporting_non_finite_returns_fails_under_its_own_status(tmp_path):
    """The RL evaluators report through agent_link.report: a policy whose returns overflowed
    (-inf mean, NaN spread) must fail as evaluation_non_finite, not crash with an empty result."""
    import json
    import subprocess
    import sys

    from researchgym.tasks.registry import BUILTIN_DIR

    result = tmp_path / "result.json"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import agent_link, os; "
        "os.environ[agent_link.RESULT_VARIABLE] = sys.argv[2]; "
        "agent_link.report({'Reward Mean': float('-inf'), 'Reward Std': float('nan'), 'episodes': 6400})"
    )
    subprocess.run([sys.executable, "-c", code, str(BUILTIN_DIR / "_shared"), str(result)], check=True)
    written = json.loads(result.read_text())
    assert written["status"] == "evaluation_non_finite"
    assert "Reward Mean = -inf" in written["error"] and "Reward Std = nan" in written["error"]


def test_the_runner_records_a_non_finite_result_as_a_failed_episode_and_goes_on(tmp_path):
    from researchgym.runs.config import Method, RunConfig
    from researchgym.runs.runner import EpisodePlan, Runner

    runner = Runner(tmp_path / "run", RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0]))
    runner.pending()
    plan = EpisodePlan("battleOfSexes", Method("baseline"), 0)
    result = {"exit_status": "submitted", "final_score": float("inf"), "steps": 1, "scores": []}
    runner.settle(plan, {"status": "finished", "result": result, "metric": "Score"})
    (row,) = runner.store.episodes()
    assert row["status"] == "failed" and row["final_score"] is None and "inf" in row["error"]


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_strict_json_writes_a_surrogate_as_the_replacement_character_and_keeps_real_characters(ensure_ascii):
    from researchgym.strict_json import strict_dumps

    value = {"error": "lost \ud800", "\udcff": [1.5, "fine \U0001f600"], "nan": math.nan}
    text = strict_dumps(value, ensure_ascii=ensure_ascii)
    text.encode("utf-8")  # would raise with a surrogate in it
    assert json.loads(text) == {"error": "lost \ufffd", "\ufffd": [1.5, "fine \U0001f600"], "nan": None}
    assert strict_dumps({"emoji": "\U0001f600"}, ensure_ascii=ensure_ascii) == json.dumps(
        {"emoji": "\U0001f600"}, ensure_ascii=ensure_ascii
    )


def test_the_store_records_an_episode_whose_texts_hold_surrogates(tmp_path):
    store = Store(tmp_path)
    store.plan("run", [("task", "agent", None, 0), ("task", "agent", None, 1)])
    first, second = (row["id"] for row in store.episodes())
    result = {
        "exit_status": "evaluation_error",
        "final_score": None,
        "steps": 2,
        "error": "ValueError: lost \ud800",
        "scores": [{"step": 2, "kind": "submit", "status": "evaluation_\udcff"}],
    }
    store.record(first, result, "Score")
    store.mark_failed(second, "bad \ud800 luck")
    rows = {row["id"]: row for row in store.episodes()}
    assert rows[first]["status"] == "finished" and rows[first]["error"] == "ValueError: lost \ufffd"
    assert rows[second]["error"] == "bad \ufffd luck"
