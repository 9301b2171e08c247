"""Does an import of MLGym's published runs reproduce the paper's AUP table?

Imports every run under an MLGym checkout (`researchgym import mlgym`), computes per-model
best-attempt and best-submission AUP with MLGym's aggregation (researchgym.importers.mlgym_aup,
over the models each published table compares), and prints them beside the numbers in the
checkout's results/tables/aup_scores_*.csv, read at run time, with the differences. For a table
that differs, the per-task scores behind it (best_scores_* / last_scores_*.csv, rounded to 3
decimals there) are compared too, naming the cells that differ. It then repeats the AUP without
the runs whose .traj file is missing (their scores come from results.json), to show whether
they matter.

Run: `.venv/bin/python benchmarks/mlgym_import.py /path/to/MLGym [--out RUN_DIR]`
(MLGym: github.com/facebookresearch/MLGym; nothing of it is shipped here.)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

from researchgym.importers import import_mlgym, mlgym_aup
from researchgym.runs.store import Store

#: The task names MLGym's published tables use -> MLGym task ids.
TABLE_NAMES = {
    "House Price": "regressionKaggleHousePrice",
    "3-SAT": "3SATTime",
    "CIFAR-10": "imageClassificationCifar10",
    "Fashion MNIST": "imageClassificationFMnist",
    "MS-COCO": "imageCaptioningCOCO",
    "Language Modeling": "languageModelingFineWeb",
    "MNLI": "naturalLanguageInferenceMNLI",
    "Battle of Sexes": "battleOfSexes",
    "Prisoners Dilemma": "prisonersDilemma",
    "Blotto": "blotto",
    "Breakout": "rlBreakoutMinAtar",
    "Meta Maze": "rlMetaMazeMisc",
    "Mountain Car Continuous": "rlMountainCarContinuous",
}
TOLERANCE = 0.0005  # the tables round to 3 decimals


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def compare_aup(run_dir: Path, table: Path, with_trajectory_only: bool = False) -> tuple[int, int, list[str]]:
    paper = {row["Model"]: row for row in read_csv(table)}
    models = [m for m in paper if m != "baseline"]
    ours = mlgym_aup(run_dir, models, with_trajectory_only=with_trajectory_only)
    print(
        f"\n{table.name}: {len(models)} models, {ours['episodes']} episodes"
        + (" (runs without a .traj file left out)" if with_trajectory_only else "")
    )
    print(
        f"  {'model':26s} {'best attempt: ours':>18s} {'paper':>7s} {'diff':>7s}   "
        f"{'best submission: ours':>21s} {'paper':>7s} {'diff':>7s}"
    )
    same = differ = 0
    for model in paper:
        row = [model]
        for ours_name, paper_name in (("best attempt", "Best AUP"), ("best submission", "Last AUP")):
            mine, theirs = ours["aup"][ours_name].get(model), float(paper[model][paper_name])
            diff = None if mine is None else mine - theirs
            if diff is not None and abs(diff) <= TOLERANCE:
                same += 1
            else:
                differ += 1
            row += [
                f"{mine:.3f}" if mine is not None else "-",
                f"{theirs:.3f}",
                f"{diff:+.3f}" if diff is not None else "-",
            ]
        print(f"  {row[0]:26s} {row[1]:>18s} {row[2]:>7s} {row[3]:>7s}   {row[4]:>21s} {row[5]:>7s} {row[6]:>7s}")
    return same, differ, models


def compare_scores(run_dir: Path, tables: Path, suffix: str, models: list[str], mlgym_to_ours: dict[str, str]) -> None:
    ours = mlgym_aup(run_dir, models)
    for kind, key in (("best", "best"), ("last", "last")):
        path = tables / f"{kind}_scores_{suffix}.csv"
        if not path.is_file():
            continue
        cells = []
        for row in read_csv(path):
            task = mlgym_to_ours.get(TABLE_NAMES.get(row["Task"], ""), TABLE_NAMES.get(row["Task"], row["Task"]))
            for model in ["baseline", *models]:
                text = (row.get(model) or "").strip()
                theirs = float(text) if text and text.lower() != "nan" else None
                mine = ours[key].get(task, {}).get(model)
                mine = None if mine is None else round(mine, 3)
                if (mine is None) != (theirs is None) or (mine is not None and abs(mine - theirs) > 0.0015):
                    cells.append(f"{row['Task']} / {model}: ours {mine}, paper {theirs}")
        print(
            f"  {path.name}: {len(cells)} of {len(models) + 1} x {len(TABLE_NAMES)} cells differ"
            + (":" if cells else "")
        )
        for cell in cells:
            print(f"    {cell}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mlgym", type=Path, help="an MLGym checkout (with trajectories/ and results/tables/)")
    parser.add_argument("--out", type=Path, help="run folder for the import (default: a temporary folder)")
    args = parser.parse_args()
    tables = args.mlgym / "results" / "tables"
    published = sorted(tables.glob("aup_scores_*.csv"))
    if not published:
        print(f"{tables}: no aup_scores_*.csv", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = args.out or Path(scratch) / "mlgym"
        started = time.perf_counter()
        report = import_mlgym(args.mlgym, run_dir)
        seconds = time.perf_counter() - started
        print(
            f"import: {report.imported} episodes imported, {report.already_there} already there, "
            f"{report.skipped} skipped, in {seconds:.1f}s -> {report.run_dir}"
        )
        for warning in report.warnings:
            print(f"  warning: {warning}")
        store = Store(report.run_dir)
        config = next(r["config"] for r in store.runs() if r["id"] == "mlgym-import")
        store.close()
        mlgym_to_ours = {mlgym: ours for ours, mlgym in config["mlgym_tasks"].items()}
        summary = {}
        for table in published:
            same, differ, models = compare_aup(report.run_dir, table)
            summary[table.name] = {"within rounding": same, "differ": differ}
            if differ:
                compare_scores(report.run_dir, tables, table.stem.removeprefix("aup_scores_"), models, mlgym_to_ours)
            compare_aup(report.run_dir, table, with_trajectory_only=True)
        print("\n" + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
