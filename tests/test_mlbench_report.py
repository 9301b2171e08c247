"""ML-Bench in the report and the viewer, on a run made by the real pipeline: `researchgym mlbench
llm` against a real OpenAI-style server, two pinned toy repositories, three samples, three answers
each, judged by the strict judge and by the original one into one run folder. Every figure below
is worked out by hand from the answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlbench_toy import make_toy_repo
from openai_server import ChatServer
from typer.testing import CliRunner
from viewer_support import get

from researchgym.analysis.mlbench import answer_key, summarize, summarize_run
from researchgym.analysis.report import build_report
from researchgym.cli import app
from researchgym.mlbench.schema import Sample
from researchgym.runs.store import Store
from researchgym.viewer import RunData, ViewerServer, export_bundle

# The toy repository is materialised in a cache of this module, not the user's.
pytestmark = pytest.mark.usefixtures("private_researchgym_cache")


def _sample(id: int, repo: str, dataset: str, lr: str, epochs: str) -> Sample:
    return Sample(
        id=id,
        path="./examples",
        repo=repo,
        instruction=f"Train on {dataset} with lr {lr} for {epochs} epochs",
        arguments={"dataset": dataset, "lr": lr, "epochs": epochs},
        oracle="Run `python train.py`.",
        output=f"python train.py --dataset {dataset} --lr {lr} --epochs {epochs}",
        expected_outputs=["model.json"],
        timeout_s=3,
    )


A = _sample(1, "toy", "citeseer", "0", "5")
B = _sample(2, "toy2", "cora", "0.5", "2")
C = _sample(3, "toy", "citeseer", "0.1", "1")


def bash(code: str) -> str:
    return f"```bash\n{code}\n```"


# Asked in this order (sample by sample, attempt by attempt); the same replies for both judges.
#                                                         strict                      original
REPLIES = [
    bash(A.output),  # pass                        pass
    bash("python train.py --dataset citeseer --lr 5 --epochs 5"),  # arguments          arguments ("0" absent)
    bash("sleep 30"),  # arguments, exec (timeout)   arguments, type; timeout passes
    "```python\nimport os\n```",  # arguments, type, exec       arguments, type, exec
    bash(B.output),  # pass                        pass
    bash(f"echo {B.output}"),  # arguments, exec (never ran) pass (substrings, .py, exit 0)
    bash("python train.py --dataset cora --lr 0.1 --epochs 1"),  # arguments           arguments
    bash(f"{C.output} --no-such-flag"),  # arguments, exec (exit 2)    exec (exit 2)
    bash("cat README.md"),  # arguments, exec (no output) arguments, type
]
STRICT = {"toy#1": [True, False, False], "toy2#2": [False, True, False], "toy#3": [False, False, False]}
ORIGINAL = {"toy#1": [True, False, False], "toy2#2": [False, True, True], "toy#3": [False, False, False]}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mlbench-report")
    pins = []
    for name in ("toy", "toy2"):
        origin = root / name
        origin.mkdir()
        commit = make_toy_repo(origin)
        pins.append(f"- name: {name}\n  source: git\n  url: {origin}\n  commit: {commit}\n")
    (root / "pins.yaml").write_text("".join(pins))
    (root / "samples.jsonl").write_text("".join(json.dumps(s.model_dump()) + "\n" for s in (A, B, C)))
    for judge in ("strict", "original"):
        server = ChatServer(replies=list(REPLIES)).start()
        try:
            result = CliRunner().invoke(
                app,
                [
                    "mlbench",
                    "llm",
                    "--model",
                    "openai/test-model",
                    "--api-base",
                    server.api_base,
                    "--data",
                    str(root / "samples.jsonl"),
                    "--pins",
                    str(root / "pins.yaml"),
                    "-k",
                    "3",
                    "--judge",
                    judge,
                    "--out",
                    str(root / "run"),
                ],
                env={"COLUMNS": "200"},
            )
        finally:
            server.stop()
        assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture(scope="module")
def rows(run_dir) -> list[dict]:
    store = Store(run_dir)
    try:
        return store.mlbench_rows()
    finally:
        store.close()


# ------------------------------------------------------------------ the summary
def test_the_rows_are_the_ones_the_replies_should_give(rows):
    assert len(rows) == 18
    for run_id, expected in (("mlbench-oracle", STRICT), ("mlbench-oracle-original", ORIGINAL)):
        got = {}
        for row in rows:
            if row["run_id"] == run_id:
                got.setdefault(row["sample"], []).append(bool(row["passed"]))
        assert got == expected, run_id


def test_the_summary_per_judge_repository_and_error_kind(run_dir):
    summary = summarize_run(run_dir)
    assert summary is not None
    groups = {(g.setting, g.model, g.mode): g for g in summary.groups}
    assert set(groups) == {("oracle", "openai/test-model", "strict"), ("oracle", "openai/test-model", "original")}
    strict, original = (
        groups["oracle", "openai/test-model", "strict"],
        groups["oracle", "openai/test-model", "original"],
    )
    # strict: toy#1 1/3, toy2#2 1/3, toy#3 0 -> pass@1 = 2/9; pass@3 = 2 of 3 samples
    assert strict.rates.samples == 3 and strict.rates.attempts == 3 and strict.rates.answers == 9
    assert strict.rates.pass_at_1 == pytest.approx(2 / 9) and strict.rates.pass_at_k == pytest.approx(2 / 3)
    assert strict.rates.first_pass_at_k == pytest.approx(2 / 3)
    # original: toy2#2 has 2 of 3 -> pass@1 = (1/3 + 2/3 + 0) / 3
    assert original.rates.pass_at_1 == pytest.approx(1 / 3) and original.rates.pass_at_k == pytest.approx(2 / 3)
    assert set(strict.repos) == {"toy", "toy2"}
    assert strict.repos["toy"].samples == 2 and strict.repos["toy"].pass_at_1 == pytest.approx(1 / 6)
    assert strict.repos["toy"].pass_at_k == pytest.approx(1 / 2)
    assert strict.repos["toy2"].pass_at_1 == pytest.approx(1 / 3) and strict.repos["toy2"].pass_at_k == 1.0
    assert original.repos["toy2"].pass_at_1 == pytest.approx(2 / 3)
    e = strict.errors
    assert (e.answers, e.arguments_failed, e.type_failed, e.execution_failed, e.timeouts, e.timeouts_passed) == (
        9,
        7,
        1,
        5,
        1,
        0,
    )
    e = original.errors
    assert (e.answers, e.arguments_failed, e.type_failed, e.execution_failed, e.timeouts, e.timeouts_passed) == (
        9,
        5,
        3,
        2,
        0,
        1,
    )
    [both] = summary.comparisons
    assert both.strict is strict and both.original is original
    assert len(summary.answers) == 18 and len({a.key for a in summary.answers}) == 18
    timeouts = [a for a in summary.answers if a.timed_out]
    assert [(a.mode, a.sample, a.attempt, a.execution_ok) for a in sorted(timeouts, key=lambda a: a.mode)] == [
        ("original", "toy#1", 2, True),
        ("strict", "toy#1", 2, False),
    ]


def test_the_judge_mode_comes_from_the_run_then_the_judgment_then_the_run_id(rows):
    row = dict(next(r for r in rows if r["run_id"] == "mlbench-oracle-original"))
    [answer] = summarize([row]).answers  # no runs given: the judgment names its judge
    assert answer.mode == "original"
    row["detail"] = json.dumps({"execution": {"passed": True, "detail": "exit status 0"}})
    assert summarize([row]).answers[0].mode == "original"  # the run id's suffix
    assert summarize([row], [{"id": row["run_id"], "config": {"judge": "strict"}}]).answers[0].mode == "strict"
    row["detail"] = "{not json"
    assert summarize([row]).groups[0].errors.answers == 1  # a damaged detail is shown, not fatal
    with pytest.raises(ValueError, match="no ML-Bench judgments"):
        summarize([])


def test_k_is_the_attempts_every_sample_has_and_a_rejudged_attempt_counts_once(rows):
    strict = [dict(r) for r in rows if r["run_id"] == "mlbench-oracle"]
    fewer = [r for r in strict if (r["sample"], r["attempt"]) != ("toy#3", 2)]
    [group] = summarize(fewer).groups
    # toy#1 [T,F,F] and toy2#2 [F,T,F]: 1 - C(2,2)/C(3,2) = 2/3 each; toy#3 [F,F]: 0
    assert group.rates.attempts == 2 and group.rates.pass_at_k == pytest.approx(4 / 9)
    assert group.rates.pass_at_1 == pytest.approx(2 / 9) and group.rates.answers == 8
    again = {**strict[2], "run_id": "rerun", "passed": 1, "created": strict[2]["created"] + 1}  # toy#1 #2, now passing
    [group] = summarize([*strict, again]).groups
    assert group.rates.answers == 9 and group.rates.pass_at_1 == pytest.approx((2 / 3 + 1 / 3) / 3)
    assert len(summarize([*strict, again]).answers) == 10  # the list still shows both


def test_answer_keys_are_url_safe_and_apart():
    base = {"run_id": "r", "setting": "oracle", "model": "m/x", "attempt": 0}
    one, two = answer_key({**base, "sample": "toy#1"}), answer_key({**base, "sample": "toy_1"})
    assert one != two and one.startswith("r_toy_1_oracle_m_x_0-")
    assert all(c.isalnum() or c in "_.-" for c in one + two)


# ------------------------------------------------------------------ the report
def test_a_run_of_ml_bench_judgments_only_gets_a_report_with_the_ml_bench_section(run_dir, tmp_path):
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## ML-Bench" in markdown and "## Scores" not in markdown and "18 judged answers" in markdown
    lines = markdown.splitlines()
    assert "| oracle | openai/test-model | strict | 3 | 3 | 0.222 | 0.667 | 0.667 | $0.0000 |" in lines
    assert "| oracle | openai/test-model | original | 3 | 3 | 0.333 | 0.667 | 0.667 | $0.0000 |" in lines
    assert "| oracle | openai/test-model | strict | toy | 2 | 0.167 | 0.500 |" in lines
    assert "| oracle | openai/test-model | original | toy2 | 1 | 0.667 | 1.000 |" in lines
    assert "| oracle | openai/test-model | strict | 9 | 7 | 1 | 5 | 1 | 0 |" in lines
    assert "| oracle | openai/test-model | original | 9 | 5 | 3 | 2 | 0 | 1 |" in lines
    assert "| oracle | openai/test-model | 3 | 0.222 | 0.333 | 0.667 | 0.667 | 7/1/5 | 5/3/2 |" in lines
    assert "pass@3 strict" in markdown
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>ML-Bench</h2>" in page and "<td>0.222</td>" in page and "<td>7/1/5</td>" in page


def test_a_report_of_episodes_and_ml_bench_rows_has_both(tmp_path):
    from researchgym.runs.runner import Method, RunConfig, Runner

    run = tmp_path / "run"
    assert Runner(run, RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0])).run() == {
        "finished": 1
    }
    before = build_report(run, tmp_path / "before").joinpath("report.md").read_text()
    assert "## Scores" in before and "ML-Bench" not in before
    store = Store(run)  # an ML-Bench judgment in the same store
    store.record_mlbench(
        "mlbench-agent",
        {
            "sample": "toy#1",
            "repo": "toy",
            "setting": "agent",
            "model": "m",
            "attempt": 0,
            "arguments_ok": True,
            "type_ok": True,
            "execution_ok": False,
            "passed": False,
            "detail": {"mode": "strict", "execution": {"passed": False, "detail": "timed out after 3 s"}},
        },
    )
    store.close()
    markdown = build_report(run, tmp_path / "after").joinpath("report.md").read_text()
    assert "## Scores" in markdown and "| battleOfSexes |" in markdown and "## Plots" in markdown
    assert "## ML-Bench" in markdown and "| agent | m | strict | 1 | 1 | 0.000 |  |  | $0.0000 |" in markdown
    assert "| agent | m | strict | 1 | 0 | 0 | 1 | 1 | 0 |" in markdown


# ------------------------------------------------------------------ the viewer
@pytest.fixture(scope="module")
def viewer(run_dir):
    server = ViewerServer(run_dir, port=0).start()
    yield server
    server.stop()


def test_the_viewer_api_gives_the_summary_the_answers_and_one_answer(viewer):
    status, body = get(viewer, "/api/overview")
    assert status == 200 and json.loads(body)["mlbench_answers"] == 18 and json.loads(body)["episodes"] == []
    status, body = get(viewer, "/api/mlbench")
    summary = json.loads(body)
    assert status == 200 and summary["answers"] == 18
    strict = next(g for g in summary["summary"]["groups"] if g["mode"] == "strict")
    assert strict["rates"]["pass_at_1"] == pytest.approx(2 / 9) and strict["errors"]["timeouts"] == 1
    assert len(summary["summary"]["comparisons"]) == 1
    status, body = get(viewer, "/api/mlbench/answers")
    answers = json.loads(body)
    assert status == 200 and len(answers) == 18 and "code" not in answers[0]
    echo = next(a for a in answers if a["mode"] == "strict" and a["sample"] == "toy2#2" and a["attempt"] == 2)
    assert (
        echo["passed"],
        echo["arguments_ok"],
        echo["type_ok"],
        echo["execution_ok"],
        echo["repo"],
        echo["setting"],
        echo["model"],
    ) == (False, False, True, False, "toy2", "oracle", "openai/test-model")
    status, body = get(viewer, f"/api/mlbench/answers/{echo['key']}")
    record = json.loads(body)
    assert status == 200 and record["code"] == f"echo {B.output}" and record["reply"] == REPLIES[5]
    assert record["checks"]["arguments"]["passed"] is False and "never ran" in record["checks"]["arguments"]["detail"]
    assert record["checks"]["type"] == {"passed": True, "detail": "bash"}
    assert record["detail"]["mode"] == "strict" and record["mode"] == "strict"
    timeout = next(a for a in answers if a["mode"] == "strict" and a["timed_out"])
    record = json.loads(get(viewer, f"/api/mlbench/answers/{timeout['key']}")[1])
    assert record["checks"]["execution"]["detail"].startswith("timed out after 3 s")


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/api/mlbench/answers/no-such-answer", 404),
        ("/api/mlbench/answers/..", 400),
        ("/api/mlbench/answers/..%2F..%2Fresults.sqlite", 400),
        ("/api/mlbench/answers/toy%231", 400),
        ("/api/mlbench/answers/%2Fetc%2Fpasswd", 400),
        ("/api/mlbench/answers/a/b", 404),
        ("/api/mlbench/nothing", 404),
    ],
)
def test_a_bad_answer_key_is_refused(viewer, path, expected):
    status, body = get(viewer, path)
    assert status == expected, (path, status, body)
    assert b"root:" not in body and b"SQLite" not in body


def test_a_run_without_ml_bench_rows_answers_empty(tmp_path):
    data = RunData(tmp_path)
    assert data.mlbench_summary()["summary"] is None and data.mlbench_answers() == []
    assert data.overview()["mlbench_answers"] == 0 and not (tmp_path / "results.sqlite").exists()


def test_the_exported_bundle_holds_every_answer(run_dir, tmp_path):
    export_bundle(run_dir, tmp_path / "bundle")
    text = (tmp_path / "bundle" / "static" / "data.js").read_text()
    bundle = json.loads(text[len("window.RG_BUNDLE = ") :].rstrip().rstrip(";"))
    mlbench = bundle["mlbench"]
    assert mlbench["summary"]["answers"] == 18 and len(mlbench["answers"]) == 18
    assert set(mlbench["records"]) == {a["key"] for a in mlbench["answers"]}
    first = mlbench["answers"][0]
    assert mlbench["records"][first["key"]] == RunData(run_dir).mlbench_answer(first["key"])


# ------------------------------------------------------------------ the browser
def test_in_a_browser_the_ml_bench_view_lists_the_answers_and_opens_one(browser, viewer, run_dir, tmp_path):
    artifacts = Path(__file__).resolve().parent.parent / "test-artifacts" / "viewer"
    artifacts.mkdir(parents=True, exist_ok=True)
    index = export_bundle(run_dir, tmp_path / "bundle")
    for url in (viewer.url, index.as_uri()):  # the server, then the bundle from disk
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.goto(url)  # no episodes: the overview hands over to the ML-Bench view
        page.wait_for_selector("#mlbench-answers tbody tr")
        assert page.locator("#mlbench-answers tbody tr").count() == 18
        assert page.locator("#mlbench-groups tbody tr").count() == 2 and page.locator("#mlbench-compare").is_visible()
        assert "0.222" in page.locator("#mlbench-groups").inner_text()
        page.select_option("select[data-mlfilter=mode]", "strict")
        page.select_option("select[data-mlfilter=result]", "passed")
        assert page.locator("#mlbench-answers tbody tr").count() == 2
        page.select_option("select[data-mlfilter=result]", "")
        page.fill("input[data-mlfilter=text]", "toy2")
        assert page.locator("#mlbench-answers tbody tr").count() == 3
        if url == viewer.url:
            page.screenshot(path=str(artifacts / "mlbench.png"), full_page=True)
        row = page.locator("#mlbench-answers tbody tr").nth(2)  # toy2#2, attempt 2: the gold behind `echo`
        assert row.locator("td").nth(4).inner_text() == "2"
        row.locator("a").click()
        page.wait_for_selector("#checks")
        assert page.locator("#check-arguments .verdict").inner_text().lower() == "fail"
        assert "never ran" in page.locator("#check-arguments .message").inner_text()
        assert page.locator("#check-type .verdict").inner_text().lower() == "pass"
        assert page.locator("#answer-code").inner_text() == f"echo {B.output}"
        assert page.locator("#answer-reply").inner_text().startswith("```bash")
        if url == viewer.url:
            page.screenshot(path=str(artifacts / "mlbench-answer.png"), full_page=True)
        assert not errors, errors
        page.close()
