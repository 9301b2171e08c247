"""Loading ML-Bench samples: the hub dataset, a local parquet or JSONL file, or a built-in suite.

load_samples("offline")                       # the suite shipped here (suites/offline/)
load_samples("hf:super-dainiu/ml-bench:quarter")  # the hub dataset, split `quarter`
load_samples("my_samples.jsonl")              # or .json (a list) or .parquet
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from researchgym.errors import ResearchGymError
from researchgym.mlbench.schema import Sample

SUITES_DIR = Path(__file__).parent / "suites"
#: What no sandbox of an answer or an agent may read: the shipped suites hold every sample's gold
#: command, expected output and labelled answers, and in a wheel install they sit under a Python
#: prefix, which every sandbox binds read-only (an answer found its gold there and passed).
ANSWER_KEYS = (SUITES_DIR,)
HUB_DATASET = "super-dainiu/ml-bench"


class MLBenchError(ResearchGymError):
    """ML-Bench data, a repository or a judgment could not be handled; the message says why."""


def suite_dir(name: str) -> Path:
    folder = SUITES_DIR / name
    if not (folder / "samples.jsonl").is_file():
        known = sorted(p.name for p in SUITES_DIR.iterdir() if (p / "samples.jsonl").is_file())
        raise MLBenchError(
            f"unknown ML-Bench suite '{name}' (known: {', '.join(known) or 'none'}); "
            "or give a .jsonl/.parquet file or hf:<dataset>:<split>"
        )
    return folder


def _rows_from_file(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise MLBenchError(f"{path}: no such file")
    if path.suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        return [(f"{path}: row {i}", row) for i, row in enumerate(frame.to_dict("records"))]
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise MLBenchError(f"{path}: expected a JSON list of samples")
        return [(f"{path}: item {i}", row) for i, row in enumerate(data)]
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append((f"{path}:{number}", json.loads(line)))
            except ValueError as exc:
                raise MLBenchError(f"{path}:{number}: not JSON: {exc}") from exc
    return rows


def _rows_from_hub(spec: str) -> list[tuple[str, dict[str, Any]]]:
    from researchgym.hub import DatasetUnavailable, load_hub_dataset

    _, _, rest = spec.partition(":")
    dataset, _, split = rest.rpartition(":") if rest.count(":") else (rest, "", "full")
    dataset = dataset or HUB_DATASET
    try:
        rows = load_hub_dataset(dataset, split=split or "full")
    except DatasetUnavailable as exc:
        raise MLBenchError(str(exc)) from exc
    return [(f"{dataset} ({split}): row {i}", dict(row)) for i, row in enumerate(rows)]


def load_samples(source: str | Path) -> list[Sample]:
    """Samples from a suite name, a file, or `hf:<dataset>:<split>`; errors name the row and field."""
    text = str(source)
    if text.startswith("hf:"):
        rows = _rows_from_hub(text)
    elif Path(text).suffix in (".jsonl", ".json", ".parquet"):
        rows = _rows_from_file(Path(text))
    else:
        rows = _rows_from_file(suite_dir(text) / "samples.jsonl")
    samples, seen = [], set()
    for where, row in rows:
        try:
            sample = Sample.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(sample)"
            raise MLBenchError(f"{where}: field '{field}': {first['msg']}") from exc
        if sample.key in seen:
            raise MLBenchError(f"{where}: the id {sample.id} of {sample.repo_name} appears twice")
        seen.add(sample.key)
        samples.append(sample)
    return samples
