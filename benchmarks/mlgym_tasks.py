"""MLGym's own task files, run here: every task YAML of an MLGym checkout is loaded, and the
three game tasks are played by the baseline agent from MLGym's files (its evaluate.py,
target.py and starter strategy.py), unchanged. Prints each game's scores beside the baseline
MLGym configured, in units of the spread of MLGym's own evaluator (measured here by running
its evaluate.py directly, as MLGym would).

    .venv/bin/python benchmarks/mlgym_tasks.py /path/to/MLGym [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import researchgym.agents
from researchgym.env import ResearchEnv
from researchgym.runs.episode import run_episode
from researchgym.tasks.registry import tasks_in

GAMES = ["battleOfSexes", "prisonersDilemma", "blotto"]


def direct_scores(folder: Path, runs: int) -> list[float]:
    """MLGym's evaluate.py run as MLGym runs it: in the task's folder, JSON on stdout."""
    values = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "evaluate.py"], cwd=folder, capture_output=True, text=True, check=True)
        values.append(float(json.loads(out.stdout)["Score"]))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, nargs="?", default=Path("/tmp/mlgym"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    found = tasks_in(args.checkout)
    loaded = [(f, s) for f, s in found if not isinstance(s, Exception)]
    ready = [f.name for f, s in loaded if not s.unavailable]
    print(f"{len(loaded)} of {len(found)} task files load; {len(ready)} can run here: {', '.join(ready)}")
    for file, spec in loaded:
        if spec.unavailable:
            print(f"  {file.name}: {spec.unavailable[0].field}: {spec.unavailable[0].problem[:110]}")
    by_file = {file.stem: (file, spec) for file, spec in loaded}
    print(f"\n{'game':<18}{'configured':>12}{'ours (mean)':>13}{'MLGym direct sd':>17}{'diff / sd':>11}")
    for game in GAMES:
        file, spec = by_file[game]
        ours = []
        for seed in range(args.seeds):
            result = run_episode(ResearchEnv(spec), researchgym.agents.create_agent("baseline"), seed=seed)
            ours += [result.final_score, result.scores[0]["validation"]["value"]]
        direct = direct_scores(args.checkout / "data" / game, 6)
        spread = statistics.stdev(direct)
        mean = statistics.fmean(ours)
        print(
            f"{game:<18}{spec.baseline_score:>12.5f}{mean:>13.5f}{spread:>17.5f}"
            f"{(mean - spec.baseline_score) / spread:>11.2f}"
        )


if __name__ == "__main__":
    main()
