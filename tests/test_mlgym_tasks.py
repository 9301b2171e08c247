"""MLGym-format task files, unchanged: a miniature repository in MLGym's layout (written here,
not MLGym's files) loads, its game and CSV tasks run end to end with MLGym's result format,
tasks whose data is absent are listed but stop with one line, and `tasks --path` / `run DIR`
work on the whole folder."""

from __future__ import annotations

import math
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import researchgym.agents
from researchgym.cli import app
from researchgym.env import ResearchEnv
from researchgym.errors import TaskConfigError
from researchgym.runs.episode import run_episode
from researchgym.runs.store import Store
from researchgym.tasks.registry import load_task, tasks_in

#: Stag hunt against a column player who hunts stag with probability 0.7 each round: always
#: hunting stag earns 4 x 0.7 = 2.8 a round; one game's mean over 10 rounds has variance
#: 16 x 0.21 / 10, so 4,000 simulated games give a standard error of sqrt(0.336 / 4000).
STAG_EXPECTED = 2.8
STAG_STDERR = math.sqrt(16 * 0.21 / 10 / 4000)

#: The CSV task's baseline predicts the training mean (2.0) for answers 1, 2 and 6.
CSV_RMSE = math.sqrt(((1 - 2) ** 2 + 0 + (6 - 2) ** 2) / 3)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _stag_hunt(root: Path) -> None:
    _write(
        root / "data" / "stagHunt" / "target.py",
        """\
        import random


        def target_column_strategy(history):
            return 0 if random.random() < 0.7 else 1
        """,
    )
    _write(
        root / "data" / "stagHunt" / "strategy.py",
        """\
        def row_strategy(history):
            return 0  # always hunt the stag
        """,
    )
    _write(
        root / "data" / "stagHunt" / "evaluate.py",
        """\
        import json

        from strategy import row_strategy
        from target import target_column_strategy

        PAYOFF = {(0, 0): 4, (0, 1): 0, (1, 0): 3, (1, 1): 3}


        def one_game(rounds=10):
            history, total = [], 0
            for _ in range(rounds):
                move = (row_strategy(history), target_column_strategy(history))
                history.append(move)
                total += PAYOFF[move]
            return total / rounds


        games = [one_game() for _ in range(4000)]
        print(json.dumps({"Score": sum(games) / len(games)}))
        """,
    )
    _write(
        root / "configs" / "tasks" / "stagHunt.yaml",
        f"""\
        id: stagHunt
        name: Stag Hunt
        description: |-
          Write row_strategy(history) in strategy.py. {{dataset_docs}}
        task_entrypoint: PythonSubmissionTasks
        training_timeout: 600
        use_generic_conda: true
        starter_code:
        - data/stagHunt/target.py
        - data/stagHunt/evaluate.py
        - data/stagHunt/strategy.py
        baseline_paths:
        - evaluate.py
        baseline_scores:
        - Score: {STAG_EXPECTED}
        evaluation_paths:
        - evaluate.py
        evaluation_read_only: true
        memory_path: data/stagHunt/memory.json
        """,
    )


def _csv_task(root: Path) -> None:
    _write(root / "data" / "tinyRegression" / "data" / "train.csv", "x,y\n0,1\n1,2\n2,3\n")
    _write(root / "data" / "tinyRegression" / "data" / "test.csv", "id,x\n0,5\n1,6\n2,7\n")
    _write(root / "data" / "tinyRegression" / "data" / "answer.csv", "id,y\n0,1\n1,2\n2,6\n")
    _write(
        root / "data" / "tinyRegression" / "baseline.py",
        """\
        import csv

        with open("data/train.csv") as f:
            ys = [float(row["y"]) for row in csv.DictReader(f)]
        with open("data/test.csv") as f:
            ids = [row["id"] for row in csv.DictReader(f)]
        with open("submission.csv", "w") as f:
            f.write("id,y\\n" + "".join(f"{i},{sum(ys) / len(ys)}\\n" for i in ids))
        """,
    )
    _write(
        root / "data" / "tinyRegression" / "evaluate.py",
        """\
        import argparse
        import csv
        import json
        import math

        parser = argparse.ArgumentParser()
        parser.add_argument("--submission_file")
        args = parser.parse_args()
        with open("data/answer.csv") as f:
            truth = {row["id"]: float(row["y"]) for row in csv.DictReader(f)}
        with open(args.submission_file) as f:
            guess = {row["id"]: float(row["y"]) for row in csv.DictReader(f)}
        print(json.dumps({"rmse": math.sqrt(sum((truth[i] - guess[i]) ** 2 for i in truth) / len(truth))}))
        """,
    )
    _write(
        root / "configs" / "datasets" / "tinyRegression.yaml",
        """\
        data_path: data/tinyRegression/data
        description: Three rows of x and y.
        is_local: true
        name: TinyRegression
        """,
    )
    _write(
        root / "configs" / "tasks" / "tinyRegression.yaml",
        f"""\
        id: tinyRegression
        name: Tiny Regression
        description: |-
          Predict y. {{dataset_docs}}
        dataset_configs:
        - datasets/tinyRegression.yaml
        task_entrypoint: CSVSubmissionTasks
        training_timeout: 600
        use_generic_conda: true
        starter_code:
        - data/tinyRegression/baseline.py
        - data/tinyRegression/evaluate.py
        baseline_paths:
        - baseline.py
        baseline_scores:
        - RMSE: {CSV_RMSE}
        evaluation_paths:
        - evaluate.py
        evaluation_read_only: true
        """,
    )


def _broken_ones(root: Path) -> None:
    """Tasks MLGym checkouts really contain: a data folder its scripts fetch, a hub dataset, its
    abstract task class, and a model task whose paths are inside a starter folder."""
    _write(root / "data" / "absentData" / "evaluate.py", "print('{}')\n")
    _write(
        root / "configs" / "datasets" / "absent.yaml",
        """\
        data_path: data/absentData/data
        description: Token shards.
        is_local: true
        name: Shards
        train_split: {file_regex: ./data/shards/train_*, name: train}
        valid_split: {file_regex: ./data/shards/val_*, name: valid}
        """,
    )
    _write(
        root / "configs" / "tasks" / "absentData.yaml",
        """\
        id: absentData
        name: Absent Data
        description: x
        dataset_configs: [datasets/absent.yaml]
        task_entrypoint: CSVSubmissionTasks
        starter_code: [data/absentData/evaluate.py]
        baseline_scores: [{loss: 3.0}]
        evaluation_paths: [evaluate.py]
        """,
    )
    _write(
        root / "configs" / "datasets" / "hub.yaml",
        """\
        data_path: someone/some-dataset
        description: On the hub.
        is_local: false
        name: HubData
        """,
    )
    _write(
        root / "configs" / "tasks" / "hubTask.yaml",
        """\
        id: hubTask
        name: Hub Task
        description: x
        dataset_configs: [datasets/hub.yaml]
        task_entrypoint: CSVSubmissionTasks
        starter_code: [data/absentData/evaluate.py]
        baseline_scores: [{accuracy: 0.5}]
        evaluation_paths: [evaluate.py]
        """,
    )
    _write(
        root / "configs" / "tasks" / "abstract.yaml",
        """\
        id: abstract
        name: Abstract
        description: x
        task_entrypoint: BaseMLTask
        baseline_scores: [{rmse: 1.0}]
        evaluation_paths: [data/nowhere/evaluate.py]
        """,
    )
    _write(root / "data" / "tinyRl" / "src" / "train.py", "print('training')\n")
    _write(root / "data" / "tinyRl" / "src" / "config.yaml", "lr: 0.1\n")
    _write(root / "data" / "tinyRl" / "evaluate.py", "print('{\"Reward Mean\": 1.0}')\n")
    _write(
        root / "configs" / "tasks" / "tinyRl.yaml",
        """\
        id: tinyRl
        name: Tiny RL
        description: x
        task_entrypoint: ModelSubmissionTasks
        requirements_path: data/tinyRl/requirements.txt
        starter_code: [data/tinyRl/src, data/tinyRl/evaluate.py]
        baseline_paths: [src/train.py]
        baseline_scores: [{Reward Mean: 1.0}]
        evaluation_paths: [evaluate.py]
        evaluation_read_only: true
        """,
    )


@pytest.fixture
def mlgym_root(tmp_path: Path) -> Path:
    root = tmp_path / "MLGym"
    _stag_hunt(root)
    _csv_task(root)
    _broken_ones(root)
    _write(root / "configs" / "tasks" / "README.md", "not a task\n")
    return root


def test_every_task_file_of_the_checkout_loads(mlgym_root: Path):
    found = {file.name: spec for file, spec in tasks_in(mlgym_root)}
    assert sorted(found) == [
        "absentData.yaml",
        "abstract.yaml",
        "hubTask.yaml",
        "stagHunt.yaml",
        "tinyRegression.yaml",
        "tinyRl.yaml",
    ]
    assert all(not isinstance(spec, Exception) for spec in found.values())
    lacking = {name: [lack.field for lack in spec.unavailable] for name, spec in found.items()}
    assert lacking == {
        "absentData.yaml": ["dataset_configs.0"],
        "hubTask.yaml": ["dataset_configs.0"],
        "abstract.yaml": ["task_entrypoint", "evaluation_paths.0"],
        "stagHunt.yaml": [],
        "tinyRegression.yaml": [],
        "tinyRl.yaml": ["requirements_path"],
    }
    game = found["stagHunt.yaml"]
    assert (game.name, game.evaluation.command, game.baseline.command) == ("StagHunt", "python evaluate.py", None)
    assert game.submission.artefacts == ["target.py", "strategy.py"]
    assert [(f.target, f.read_only) for f in game.starter_files] == [
        ("target.py", False),
        ("evaluate.py", True),
        ("strategy.py", False),
    ]
    regression = found["tinyRegression.yaml"]
    assert regression.baseline.command == "python baseline.py"
    assert regression.metric.direction == "minimize" and regression.datasets[0].mount_point == "data"
    model = found["tinyRl.yaml"]
    # Workspace paths inside a starter folder; the config MLGym's `find` picks.
    assert model.baseline.command == "python src/train.py"
    assert model.evaluation.command == "python evaluate.py --config_fname src/config.yaml"
    assert model.submission.artefacts == []  # the whole workspace, as MLGym scores it


def test_a_task_whose_data_folder_is_absent_stops_with_one_line(mlgym_root: Path):
    spec = load_task(mlgym_root / "configs" / "tasks" / "absentData.yaml")
    with pytest.raises(TaskConfigError) as info:
        ResearchEnv(spec)
    message = str(info.value)
    assert "\n" not in message
    assert str(mlgym_root / "configs" / "tasks" / "absentData.yaml") in message
    assert str((mlgym_root / "data" / "absentData" / "data").resolve()) in message
    assert "./data/shards/train_*" in message and "./data/shards/val_*" in message  # what it should hold
    hub = load_task(mlgym_root / "configs" / "tasks" / "hubTask.yaml")
    with pytest.raises(TaskConfigError, match="someone/some-dataset.*no network"):
        ResearchEnv(hub)


def test_the_game_runs_end_to_end_and_the_baseline_reproduces_its_score(mlgym_root: Path):
    path = mlgym_root / "configs" / "tasks" / "stagHunt.yaml"
    values = []
    for seed in range(2):
        env = ResearchEnv(load_task(path))
        result = run_episode(env, researchgym.agents.create_agent("baseline"), seed=seed)
        assert result.exit_status == "submitted"
        values += [result.final_score, result.scores[0]["validation"]["value"]]
    for value in values:
        assert abs(value - STAG_EXPECTED) < 5 * STAG_STDERR, values
    assert len(set(values)) > 1  # MLGym's evaluator is unseeded: real simulations, not a fixed number


def test_an_edited_strategy_is_what_gets_scored(mlgym_root: Path):
    from researchgym.agents.scripted import ScriptedAgent

    env = ResearchEnv(load_task(mlgym_root / "configs" / "tasks" / "stagHunt.yaml"))
    hare = "cat > strategy.py <<'EOF'\ndef row_strategy(history):\n    return 1\nEOF"
    result = run_episode(env, ScriptedAgent([hare, "validate", "submit"]), seed=0)
    assert result.final_score == 3.0  # hunting hare always pays 3, whatever the opponent does


def test_the_csv_task_runs_its_baseline_script(mlgym_root: Path):
    env = ResearchEnv(load_task(mlgym_root / "configs" / "tasks" / "tinyRegression.yaml"))
    result = run_episode(env, researchgym.agents.create_agent("baseline"), seed=0)
    assert result.exit_status == "submitted"
    # The config says RMSE and the evaluator prints rmse (MLGym's Titanic task does the same
    # with Accuracy): a key that differs only in case is the metric.
    assert result.final_score == pytest.approx(CSV_RMSE)


def test_tasks_path_lists_the_folder_and_run_plays_the_ready_tasks(mlgym_root: Path, tmp_path: Path):
    runner = CliRunner()
    listing = runner.invoke(app, ["tasks", "--path", str(mlgym_root)], env={"COLUMNS": "250"})
    assert listing.exit_code == 0, listing.output
    for name in ("stagHunt.yaml", "tinyRegression.yaml", "absentData.yaml", "abstract.yaml"):
        assert name in listing.output
    assert "2 of 6 ready" in listing.output
    assert "absentData.yaml cannot run here" in listing.output
    result = runner.invoke(
        app, ["run", str(mlgym_root), "--agent", "baseline", "--out", str(tmp_path / "runs")], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "left out absentData.yaml" in " ".join(result.output.split())
    (run_dir,) = (tmp_path / "runs").iterdir()
    episodes = Store(run_dir).episodes("finished")
    # Tasks given by path are recorded by path (that is how a resume finds them again).
    assert sorted(Path(e["task"]).name for e in episodes) == ["stagHunt.yaml", "tinyRegression.yaml"]
    assert all(e["final_score"] is not None for e in episodes)

    # Once the checkout is gone, the report and the viewer still rate both tasks as they were
    # played: the facts come from the trajectories (the paths no longer load).
    from researchgym.analysis.episodes import load_episodes
    from researchgym.analysis.summary import summarize
    from researchgym.viewer.data import RunData

    regression = next(e["task"] for e in episodes if e["task"].endswith("tinyRegression.yaml"))
    shutil.rmtree(mlgym_root)
    for summary in (summarize(load_episodes(run_dir)), RunData(run_dir).overview()["summary"]):
        directions = summary["directions"] if isinstance(summary, dict) else summary.directions
        baselines = summary["baselines"] if isinstance(summary, dict) else summary.baselines
        assert directions[regression] == "minimize"
        assert baselines[regression] == pytest.approx(CSV_RMSE)


def test_a_task_from_an_mlgym_file_has_an_id_of_its_own_and_reports_rate_it_as_played(mlgym_root: Path, tmp_path: Path):
    """MLGym's `id` is not ours: its battleOfSexes.yaml would share a report row with our port
    (a different evaluator), and its imageClassificationCifar10L1.yaml reuses the id of another
    task. Each file's task is `mlgym-<file name>`, and its trajectory carries the facts that
    rate it, so a report of trajectories alone rates it after the checkout is gone."""
    import shutil

    import researchgym
    from researchgym.analysis.episodes import load_episodes
    from researchgym.analysis.summary import summarize

    tasks = mlgym_root / "configs" / "tasks"
    stag = (tasks / "stagHunt.yaml").read_text()
    (tasks / "battleOfSexes.yaml").write_text(stag.replace("id: stagHunt", "id: battleOfSexes"))
    (tasks / "battleOfSexesL1.yaml").write_text(stag.replace("id: stagHunt", "id: battleOfSexes"))
    ids = {name: load_task(tasks / name).id for name in ("battleOfSexes.yaml", "battleOfSexesL1.yaml")}
    assert ids == {"battleOfSexes.yaml": "mlgym-battleOfSexes", "battleOfSexesL1.yaml": "mlgym-battleOfSexesL1"}
    assert load_task(tasks / "tinyRegression.yaml").id == "mlgym-tinyRegression"

    played = tmp_path / "trajectories"
    for task in ("battleOfSexes", tasks / "battleOfSexes.yaml", tasks / "tinyRegression.yaml"):
        env = researchgym.make(str(task), trajectory_dir=played)
        assert run_episode(env, researchgym.agents.create_agent("baseline"), seed=0).exit_status == "submitted"
    shutil.rmtree(mlgym_root)  # the files are gone: the trajectories alone must say how to rate them

    summary = summarize(load_episodes(played))
    assert summary.tasks == ["battleOfSexes", "mlgym-battleOfSexes", "mlgym-tinyRegression"]
    assert summary.directions["mlgym-tinyRegression"] == "minimize"  # not the default, maximise
    assert summary.baselines["mlgym-tinyRegression"] == pytest.approx(CSV_RMSE)
    assert summary.baselines["mlgym-battleOfSexes"] == pytest.approx(STAG_EXPECTED)
    assert summary.baselines["battleOfSexes"] == researchgym.load_task("battleOfSexes").baseline_score
    # Our port's scores and the MLGym file's are kept apart, each beside its own baseline.
    assert summary.best["battleOfSexes"]["baseline agent"] != summary.best["mlgym-battleOfSexes"]["baseline agent"]
    assert summary.stdout_scored == {
        "mlgym-battleOfSexes": ["baseline agent"],
        "mlgym-tinyRegression": ["baseline agent"],
    }
