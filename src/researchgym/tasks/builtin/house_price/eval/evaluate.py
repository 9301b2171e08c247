"""Score submission.csv for the House Price task.

    python evaluate.py --split validation|test

Predictions are matched to the truth by Id (not by row position): every Id of the split must
appear exactly once with a finite SalePrice, or the submission is rejected with a reason.
Reports r2 (the primary metric) and rmse on the result channel (agent_link.report; a JSON
line when run by hand).
"""

import argparse
import math
import os
import sys

import pandas as pd
from sklearn.metrics import mean_squared_error, r2_score

from agent_link import report, report_error


def fail(message: str) -> None:
    report_error(message)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    args = parser.parse_args()
    truth_file = "data/answers/test_answers.csv" if args.split == "test" else "data/validation.csv"
    truth = pd.read_csv(truth_file)[["Id", "SalePrice"]]
    try:
        submission = pd.read_csv("submission.csv")
    except (OSError, pd.errors.ParserError) as exc:
        fail(f"cannot read submission.csv: {exc}")
    for column in ("Id", "SalePrice"):
        if column not in submission.columns:
            fail(f"submission.csv has no '{column}' column (it has {list(submission.columns)})")
    if submission["Id"].duplicated().any():
        fail(f"submission.csv repeats Ids: {submission['Id'][submission['Id'].duplicated()].head(5).tolist()}")
    merged = truth.merge(submission[["Id", "SalePrice"]], on="Id", how="left", suffixes=("", "_predicted"))
    missing = merged["SalePrice_predicted"].isna()
    if missing.any():
        fail(f"submission.csv lacks a SalePrice for {int(missing.sum())} {args.split} Ids, "
             f"e.g. {merged['Id'][missing].head(5).tolist()}")
    predicted = pd.to_numeric(merged["SalePrice_predicted"], errors="coerce")
    if not all(math.isfinite(x) for x in predicted):
        fail("submission.csv has SalePrice values that are not finite numbers")
    rmse = math.sqrt(mean_squared_error(merged["SalePrice"], predicted))
    report({"r2": float(r2_score(merged["SalePrice"], predicted)), "rmse": rmse, "split": args.split})


if __name__ == "__main__":
    main()
