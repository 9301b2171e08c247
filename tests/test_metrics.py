"""Metrics: hand-computed AUP, ranks and pass@k, and properties that must always hold."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.metrics import bootstrap_ci, borda, compute_aup, mean_ranks, pass_at_k, task_ranks, task_ratios

# t1 maximise: baseline 1, a 2, b 1.5 -> best 2, worst 1, worst_ratio 2, tau = ceil(2.1) = 3.
# t2 minimise: baseline 10, a 5, b missing -> best 5, worst 10, worst_ratio 2; b gets 2.1.
# max_tau = ceil(10 * log10(3)) / 10 = 0.5; a has ratio 1 everywhere -> AUP 0.5.
# b: log10(4/3) = 0.1249 on t1, log10(2.1) = 0.3222 on t2 -> 0.5*(0.3222-0.1249) + (0.5-0.3222).
# baseline: log10(2) = 0.3010 on both -> 0.5 - 0.3010, minus one grid step (left sum).
BEST = {"t1": {"baseline": 1.0, "a": 2.0, "b": 1.5}, "t2": {"baseline": 10.0, "a": 5.0, "b": None}}
DIRECTIONS = {"t1": "maximize", "t2": "minimize"}


def test_ratios_of_a_maximise_and_a_minimise_task():
    t1 = task_ratios(BEST["t1"], "baseline", "maximize")
    assert t1.ratios == pytest.approx({"a": 1.0, "b": 2 / 1.5, "baseline": 2.0})
    assert t1.worst_ratio == 2.0 and t1.tau == 3.0
    t2 = task_ratios(BEST["t2"], "baseline", "minimize")
    assert t2.ratios == pytest.approx({"a": 1.0, "baseline": 2.0, "b": 2.1})  # missing -> infeasible


def test_aup_matches_the_hand_computation():
    result = compute_aup({"best": BEST}, DIRECTIONS)["best"]
    grid_step = 0.5 / 499
    assert result["a"] == 0.5
    expected_b = 0.5 * (math.log10(2.1) - math.log10(4 / 3)) + (0.5 - math.log10(2.1))
    assert result["b"] == pytest.approx(expected_b, abs=2 * grid_step)
    assert result["baseline"] == pytest.approx(0.5 - math.log10(2), abs=2 * grid_step)


def test_worse_than_baseline_and_negative_scores_are_infeasible():
    ratios = task_ratios({"baseline": 10.0, "better": 20.0, "worse": 5.0, "negative": -3.0}, "baseline", "maximize")
    assert ratios.worst_ratio == 2.0
    assert ratios.ratios["worse"] == ratios.ratios["negative"] == pytest.approx(2.1)


def test_a_negative_baseline_makes_every_negative_score_infeasible():
    # Blotto's baseline is -0.248: negative scores, the baseline's included, are infeasible.
    ratios = task_ratios({"baseline": -0.248, "m": 0.25, "n": -0.1}, "baseline", "maximize")
    assert ratios.ratios == pytest.approx({"m": 1.0, "baseline": 1.05, "n": 1.05})
    nobody = task_ratios({"baseline": -0.3, "n": -0.1}, "baseline", "maximize")
    assert nobody.ratios == pytest.approx({"baseline": 1.05, "n": 1.05}) and nobody.tau == 2.0


def test_best_and_last_tables_share_one_grid():
    last = {"t1": {"baseline": 1.0, "a": 1.0, "b": 1.5}, "t2": {"baseline": 10.0, "a": 50.0, "b": 9.0}}
    result = compute_aup({"best": BEST, "last": last}, DIRECTIONS)
    assert set(result) == {"best", "last"} and result["best"]["a"] == 0.5
    assert result["last"]["b"] > result["last"]["baseline"]


def test_ranks_and_borda():
    assert task_ranks({"x": 3.0, "y": 1.0, "z": 3.0, "w": None}, "maximize") == {"x": 1.5, "z": 1.5, "y": 3.0, "w": 4.0}
    assert task_ranks({"x": 3.0, "y": 1.0}, "minimize") == {"y": 1.0, "x": 2.0}
    assert mean_ranks(BEST, DIRECTIONS) == {"a": 1.0, "b": 2.5, "baseline": 2.5}
    assert borda(BEST, DIRECTIONS) == {"a": 4.0, "b": 1.0, "baseline": 1.0}


def test_pass_at_k_is_the_unbiased_estimator():
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))
    assert pass_at_k(5, 0, 5) == 0.0 and pass_at_k(5, 4, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_bootstrap_interval_brackets_the_mean():
    estimate, low, high = bootstrap_ci([0.8, 0.82, 0.85, 0.79, 0.81], resamples=2000)
    assert low <= estimate <= high and estimate == pytest.approx(0.814)
    assert bootstrap_ci([1.0, 1.0])[1:] == (1.0, 1.0)


score = st.one_of(st.none(), st.floats(min_value=0.01, max_value=100, allow_nan=False))


@st.composite
def tables(draw):
    n_tasks = draw(st.integers(1, 4))
    methods = ["baseline"] + [f"m{i}" for i in range(draw(st.integers(1, 4)))]
    table = {f"t{t}": {m: draw(score) for m in methods} for t in range(n_tasks)}
    for row in table.values():
        row["baseline"] = draw(st.floats(min_value=0.01, max_value=100))
    directions = {t: draw(st.sampled_from(["maximize", "minimize"])) for t in table}
    return table, directions


@settings(max_examples=60, deadline=None)
@given(tables(), st.randoms())
def test_aup_does_not_depend_on_the_order_of_methods_or_tasks(data, rnd):
    table, directions = data
    tasks = list(table)
    rnd.shuffle(tasks)
    shuffled = {}
    for task in tasks:
        methods = list(table[task])
        rnd.shuffle(methods)
        shuffled[task] = {m: table[task][m] for m in methods}
    assert compute_aup({"best": table}, directions) == compute_aup({"best": shuffled}, directions)


@settings(max_examples=60, deadline=None)
@given(tables(), st.data())
def test_improving_on_one_task_never_loses_aup(data, draw):
    table, directions = data
    task = draw.draw(st.sampled_from(sorted(table)))
    method = draw.draw(st.sampled_from(sorted(m for m in table[task] if m != "baseline")))
    before = compute_aup({"best": table}, directions)["best"][method]
    old = table[task][method]
    baseline = table[task]["baseline"]
    if directions[task] == "maximize":
        new = max(old or 0.0, baseline) * 1.5 + 0.01
    else:
        new = min(old if old is not None else baseline, baseline) / 2
    improved = {t: dict(row) for t, row in table.items()}
    improved[task][method] = new
    assert compute_aup({"best": improved}, directions)["best"][method] >= before - 1e-9


def test_aup_command_prints_the_csv_and_draws_the_plot(tmp_path):
    best = tmp_path / "best.csv"
    best.write_text("Task,baseline,a,b\nt1,1,2,1.5\nt2,10,5,\n")
    plot = tmp_path / "profiles.png"
    result = CliRunner().invoke(app, ["aup", "--best", str(best), "--last", str(best), "--minimize", "t2",
                                      "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Model,Best AUP,Last AUP" and lines[1] == "a,0.500,0.500"
    assert plot.stat().st_size > 10_000
    bad = tmp_path / "bad.csv"
    bad.write_text("Task,baseline,a\nt1,1,abc\n")
    result = CliRunner().invoke(app, ["aup", "--best", str(bad)])
    assert result.exit_code == 2 and "line 2, column 'a'" in result.output
