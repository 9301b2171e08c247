"""The web viewer, end to end: a real run (the react agent behind a real OpenAI-style server,
and the baseline agent) into a real store; the viewer's server; Debian's Chromium driven by
Playwright. Screenshots are kept in test-artifacts/viewer/."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import write_task
from openai_server import ChatServer
from viewer_support import get

from researchgym.runs.runner import Method, RunConfig, Runner
from researchgym.viewer import RunData, ViewerServer, export_bundle

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "viewer"
BIG = 1_000_000


def reply(thought: str, command: str) -> str:
    return f"DISCUSSION\n{thought}\n\n```\n{command}\n```\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("viewer")
    task = write_task(root / "tasks")
    yaml = (task / "task.yaml").read_text()
    (task / "task.yaml").write_text(
        yaml.replace("  command_timeout_s: 10", "  command_timeout_s: 10\n  max_output_chars: 1100000")
    )
    server = ChatServer(
        replies=[
            reply("Let me look at the data first.", "ls data"),
            reply("A very long output, to see that the page copes.", f"python -c \"print('x' * {BIG})\""),
            reply("Now the starter solution.", "python solve.py"),
            reply("Score it on the validation split.", "validate"),
            reply("Good enough: submit.", "submit"),
        ]
    ).start()
    try:
        config = RunConfig(
            tasks=[str(task)],
            methods=[Method("react", "openai/test-model"), Method("baseline")],
            seeds=[0],
            api_base=server.api_base,
            max_episodes=1,
        )
        counts = Runner(root / "run", config).run()
    finally:
        server.stop()
    assert counts == {"finished": 2}, counts
    return root / "run"


@pytest.fixture(scope="module")
def viewer(run_dir):
    server = ViewerServer(run_dir, port=0).start()
    yield server
    server.stop()


# ------------------------------------------------------------------ the API
def test_the_api_gives_the_overview_and_each_episode_with_long_outputs_cut(viewer, run_dir):
    status, body = get(viewer, "/api/overview")
    overview = json.loads(body)
    assert status == 200 and len(overview["episodes"]) == 2
    assert {e["method"] for e in overview["episodes"]} == {"openai/test-model", "baseline agent"}
    assert all(e["status"] == "finished" for e in overview["episodes"])
    summary = overview["summary"]
    assert set(summary["aup"]["best attempt"]) == {"baseline", "openai/test-model", "baseline agent"}
    # The tiny task reports on stdout (MLGym's convention): both methods' scores could be forged.
    # (The run names the task by its folder's path.)
    assert [(task.rsplit("/", 1)[-1], methods) for task, methods in summary["stdout_scored"].items()] == [
        ("tiny", ["baseline agent", "openai/test-model"])
    ]
    react = next(e for e in overview["episodes"] if e["method"] == "openai/test-model")
    status, body = get(viewer, f"/api/episodes/{react['key']}")
    episode = json.loads(body)
    assert [s["action"] for s in episode["steps"]][:2] == ["ls data", f"python -c \"print('x' * {BIG})\""]
    assert episode["steps"][0]["thought"].endswith("Let me look at the data first.")
    big = episode["steps"][1]
    assert big["observation_chars"] > BIG and len(big["observation"]) == 20_000
    status, full = get(viewer, f"/api/episodes/{react['key']}/steps/2/observation")
    assert status == 200 and len(full.decode()) == big["observation_chars"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/episodes/../../../etc/passwd",
        "/api/episodes/..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/results.sqlite",
        "/../results.sqlite",
        "/results.sqlite",
        "/static/data.js",
        "/api/episodes/%2Fetc%2Fpasswd",
        "/api/episodes/x/steps/1/../../../../../etc/passwd",
    ],
)
def test_the_api_refuses_path_traversal_and_serves_nothing_outside_the_run(viewer, path):
    status, body = get(viewer, path)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and b"SQLite" not in body


def test_a_trajectory_path_outside_the_run_folder_is_never_read(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    from researchgym.runs.store import Store

    store = Store(copy)
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({"type": "reset", "task": "secret", "prompt": "SECRET"}) + "\n")
    with store.transaction() as db:
        db.execute("UPDATE episodes SET trajectory=?", (str(outside),))
    store.close()
    data = RunData(copy)
    for episode in data.overview()["episodes"]:
        if episode["has_trajectory"]:  # found again inside the run folder, not at the stored path
            assert "SECRET" not in json.dumps(data.episode(episode["key"]))


def test_a_running_episode_shows_its_steps_so_far(run_dir, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(run_dir, live)
    from researchgym.runs.store import Store

    store = Store(live)
    [row] = [r for r in store.episodes() if r["model"] == "openai/test-model"]
    with store.transaction() as db:  # as the store looks mid-episode: no end, no trajectory column yet
        db.execute(
            "UPDATE episodes SET status='running', trajectory=NULL, exit_status=NULL, final_score=NULL, "
            "steps=NULL, cost=NULL WHERE id=?",
            (row["id"],),
        )
    store.close()
    path = next((live / "trajectories").rglob(Path(row["trajectory"]).name))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n")  # reset and two steps
    data = RunData(live)
    entry = next(e for e in data.overview()["episodes"] if e["id"] == row["id"])
    assert entry["status"] == "running" and entry["steps"] == 2
    assert len(data.episode(entry["key"])["steps"]) == 2
    path.write_text("\n".join(lines[:4]) + "\n")  # one more step arrives
    assert len(data.episode(entry["key"])["steps"]) == 3


# ------------------------------------------------------------------ the browser
def test_in_a_browser_the_overview_lists_every_episode_and_an_episode_shows_its_steps(browser, viewer):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(viewer.url)
    page.wait_for_selector("#episodes tbody tr")
    assert page.locator("#episodes tbody tr").count() == 2
    assert page.locator("#scores").is_visible() and page.locator("#aup").is_visible()
    assert "could forge" in page.locator("#forgeable").inner_text()
    assert "tiny (baseline agent, openai/test-model)" in page.locator("#forgeable").inner_text()
    page.select_option("select[data-filter=method]", "baseline agent")
    assert page.locator("#episodes tbody tr").count() == 1
    page.select_option("select[data-filter=method]", "")
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    page.locator("#episodes tbody tr", has_text="openai/test-model").locator("a").click()
    page.wait_for_selector("details.step")
    assert page.locator("details.step").count() == 5
    assert (
        page.locator("details.step")
        .first.locator("pre.thought")
        .inner_text()
        .endswith("Let me look at the data first.")
    )
    chart = page.locator("svg.score-chart")
    assert chart.is_visible() and chart.locator("circle.point").count() >= 2  # validation and test of step 4
    page.screenshot(path=str(ARTIFACTS / "episode-top.png"))
    big = page.locator("#step-2 pre.observation")
    assert len(big.inner_text()) == 2000  # a preview, not a megabyte
    started = time.perf_counter()
    page.locator("#step-2 button.show-all").click()
    page.wait_for_function(
        "document.querySelector('#step-2 pre.observation').textContent.length > 1000000", timeout=20_000
    )
    page.evaluate("1 + 1")  # the page still answers
    assert time.perf_counter() - started < 15
    page.locator("#step-2 button", has_text="show less").click()
    page.click("a[href$='/step/4']")
    page.wait_for_function("location.hash.endsWith('/step/4')")
    assert page.locator("#step-4").is_visible()
    page.locator("#step-4 .step-nav a", has_text="next").click()
    page.wait_for_function("location.hash.endsWith('/step/5')")
    page.screenshot(path=str(ARTIFACTS / "episode.png"), full_page=False)
    assert not errors, errors
    page.close()


def test_the_exported_bundle_opens_from_disk_without_a_server(browser, run_dir, tmp_path):
    index = export_bundle(run_dir, tmp_path / "bundle")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(index.as_uri())
    page.wait_for_selector("#episodes tbody tr")
    assert page.locator("#episodes tbody tr").count() == 2
    page.locator("#episodes tbody tr", has_text="openai/test-model").locator("a").click()
    page.wait_for_selector("details.step")
    page.locator("#step-2 button.show-all").click()
    page.wait_for_function("document.querySelector('#step-2 pre.observation').textContent.length > 1000000")
    assert not errors, errors
    page.close()


def test_the_cli_exports_a_bundle_and_names_a_missing_folder(run_dir, tmp_path):
    from typer.testing import CliRunner

    from researchgym.cli import app

    cli = CliRunner()
    result = cli.invoke(app, ["view", str(run_dir), "--export", str(tmp_path / "bundle")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "bundle" / "index.html").is_file() and (tmp_path / "bundle" / "static" / "data.js").is_file()
    bundle = (tmp_path / "bundle" / "static" / "data.js").read_text()
    assert bundle.startswith("window.RG_BUNDLE = ") and "</script" not in bundle
    missing = cli.invoke(app, ["view", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "is not a folder" in missing.output
