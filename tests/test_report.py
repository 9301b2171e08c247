"""`researchgym report` on a run made here: tables for every task, real plots."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import researchgym
import researchgym.agents
from researchgym.agents.scripted import ScriptedAgent
from researchgym.analysis.episodes import action_category, exit_category, load_episodes
from researchgym.cli import app
from researchgym.runs.episode import run_episode


def test_report_of_a_run(tmp_path: Path):
    run = tmp_path / "run"
    for task, best_move in (("battleOfSexes", 0), ("prisonersDilemma", 1)):
        run_episode(researchgym.make(task, trajectory_dir=run), researchgym.agents.create_agent("baseline"), seed=0)
        agent = ScriptedAgent(
            [
                "open strategy.py",
                f"printf 'def row_strategy(h):\\n    return {best_move}\\n' > strategy.py",
                "validate",
                "submit",
            ],
            then_submit=False,
        )
        agent.name = "fixer"
        run_episode(researchgym.make(task, trajectory_dir=run, limits={"max_steps": 3}), agent, seed=1)
    episodes = load_episodes(run)
    assert {(e.task, e.method) for e in episodes} == {
        ("battleOfSexes", "baseline agent"),
        ("battleOfSexes", "fixer"),
        ("prisonersDilemma", "baseline agent"),
        ("prisonersDilemma", "fixer"),
    }
    result = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    for task in ("battleOfSexes", "prisonersDilemma"):
        assert f"| {task} |" in markdown
    assert "## AUP and ranks" in markdown and "| fixer |" in markdown
    # The fixer hit its step limit on validate, so it was auto-submitted: counted as max steps.
    assert "| fixer | 0 | 2 |" in markdown
    for name in ("profiles.png", "aup_vs_cost.png", "statuses_and_actions.png"):
        data = (tmp_path / "report" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    assert "<table>" in (tmp_path / "report" / "report.html").read_text()
    # Both games report on the result channel: no score here could have been forged.
    assert "could forge" not in markdown


def test_the_report_names_scores_read_from_the_evaluators_output(tmp_path: Path, tiny_task: Path):
    """A task that reports on stdout (MLGym's convention, here the tiny CSV task loaded by path)
    is named, with the methods it scored; a task scored on the channel is not."""
    run = tmp_path / "run"
    solver = ScriptedAgent(["python solve.py", "submit"], then_submit=False)
    solver.name = "solver"
    run_episode(researchgym.make(str(tiny_task), trajectory_dir=run), solver, seed=0)
    run_episode(
        researchgym.make("battleOfSexes", trajectory_dir=run), researchgym.agents.create_agent("baseline"), seed=0
    )
    episodes = {e.task: e for e in load_episodes(run)}
    assert episodes["tiny"].result_via == "stdout" and episodes["battleOfSexes"].result_via == "channel"
    assert episodes["tiny"].final_score == 1.0

    result = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    section = markdown.split("## Scores an agent could forge", 1)[1].split("\n## ", 1)[0]
    assert "- tiny: solver" in section and "battleOfSexes" not in section


def test_categories():
    assert [
        action_category(a)
        for a in ("edit 1:2\nx\nend_of_edit", "open f.py", "grep -r x .", "validate", "python train.py", "pip list", "")
    ] == ["edit", "view", "search", "validate", "python", "bash", "bash"]
    assert [
        exit_category(s)
        for s in (
            "submitted",
            "autosubmission (max_steps)",
            "autosubmission (format_error)",
            "autosubmission (cost_limit)",
            "autosubmission (context_exceeded)",
            "evaluation_format_error",
            "autosubmission (api_error)",
            "closed",
        )
    ] == ["success", "max steps", "format", "cost", "context", "evaluation error", "API error", "runtime"]
    # a model that never answered is an API failure, whatever its auto-submission came to
    assert exit_category("autosubmission (model_unavailable): submission_not_found") == "API error"


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path: Path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no finished episode" in result.output


def test_a_trajectory_an_agent_writes_in_its_workspace_is_no_episode(tmp_path: Path):
    """`researchgym report runs/` over a folder of runs reads trajectory files, and each run's
    episodes' workspaces are kept inside it: an agent wrote a file shaped like a trajectory there
    (any task, any method, any score) and it was reported as an episode. Inside a run folder
    only its trajectories count; links out of a workspace are never followed either."""
    import json
    import warnings

    from researchgym.runs.runner import Method, RunConfig, Runner
    from researchgym.viewer.data import RunData

    forged = [
        {"v": 1, "type": "reset", "task": "battleOfSexes", "seed": 0, "run_info": {"model": "forger"}},
        {"v": 1, "type": "end", "exit_status": "submitted", "final_score": 1e6, "steps": 1, "scores": []},
    ]
    planting = "printf '%s\\n' " + " ".join(f"'{json.dumps(line)}'" for line in forged) + " > forged.jsonl"
    agent = ScriptedAgent([planting, "ln -s / everything", "submit"], then_submit=False)
    agent.name = "planter"
    runs = tmp_path / "runs"
    config = RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0], sandbox="bwrap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert Runner(runs / "mine", config).run() == {"finished": 1}
    workspace = next((runs / "mine" / "workspaces").iterdir())
    run_episode(researchgym.make("battleOfSexes", workspace_dir=workspace), agent, seed=0)
    assert list(workspace.rglob("forged.jsonl")), "the agent's file is there"

    for where in (runs, runs / "mine"):
        methods = {e.method for e in load_episodes(where)}
        assert "forger" not in methods and methods == {"baseline agent"}, (where, methods)
    summary = RunData(runs).overview()["summary"]
    assert summary["methods"] == ["baseline agent"]
