"""Metrics: hand-computed AUP, ranks and pass@k, and properties that must always hold."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.errors import ResearchGymError
from researchgym.metrics import bootstrap_ci, borda, compute_aup, mean_ranks, pass_at_k, task_ranks, task_ratios
from researchgym.metrics.profiles import NonFiniteScoreError, max_tau, ratio_cap, tables_ratios

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


def grid_step(top: float) -> float:
    return top / 499


def test_a_minimised_score_of_zero_with_a_baseline_of_zero():
    # All feasible scores equal (0): every ratio is 1, tau = ceil(1.05) = 2, max_tau = ceil(3.01) / 10 = 0.4.
    ratios = task_ratios({"baseline": 0.0, "m": 0.0}, "baseline", "minimize")
    assert ratios.ratios == {"baseline": 1.0, "m": 1.0} and ratios.worst_ratio == 1.0 and ratios.tau == 2.0
    assert compute_aup({"best": {"taskA": {"baseline": 0.0, "m": 0.0}}}, {"taskA": "minimize"}) == {
        "best": {"baseline": 0.4, "m": 0.4}
    }


def test_a_minimised_score_of_zero_shifts_the_task_onto_a_positive_scale():
    # lo = 0, hi = 4 (c is worse than the baseline: infeasible). s' = s - 0 + 4, r = s' / 4:
    # a 4/4 = 1, b 6/4 = 1.5, baseline 8/4 = 2 = worst_ratio; c gets 2.1; tau = 3.
    ratios = task_ratios({"baseline": 4.0, "a": 0.0, "b": 2.0, "c": 5.0}, "baseline", "minimize")
    assert ratios.ratios == pytest.approx({"a": 1.0, "b": 1.5, "baseline": 2.0, "c": 2.1})
    assert ratios.worst_ratio == 2.0 and ratios.tau == 3.0
    # The crash: baseline 1, m at 0 -> m 1, baseline 2; max_tau = ceil(10 log10 3) / 10 = 0.5.
    result = compute_aup({"best": {"taskA": {"baseline": 1.0, "m": 0.0}}}, {"taskA": "minimize"})["best"]
    assert result["m"] == 0.5
    assert result["baseline"] == pytest.approx(0.5 - math.log10(2), abs=2 * grid_step(0.5))


def test_a_maximised_score_of_zero_with_a_negative_baseline():
    # Baseline -5 and "neg" are negative: infeasible (MLGym). Feasible 0, 1, 2: lo = 0, hi = 2,
    # s' = s + 2, r = 4 / s': zero 4/2 = 2, half 4/3, top 1; infeasible get 2.1; tau = 3.
    scores = {"baseline": -5.0, "zero": 0.0, "half": 1.0, "top": 2.0, "neg": -1.0}
    ratios = task_ratios(scores, "baseline", "maximize")
    assert ratios.ratios == pytest.approx({"zero": 2.0, "half": 4 / 3, "top": 1.0, "baseline": 2.1, "neg": 2.1})
    assert ratios.worst_ratio == 2.0 and ratios.tau == 3.0
    result = compute_aup({"best": {"t": scores}}, {"t": "maximize"})["best"]
    assert result["top"] == 0.5
    assert result["zero"] == pytest.approx(0.5 - math.log10(2), abs=2 * grid_step(0.5))
    assert result["half"] == pytest.approx(0.5 - math.log10(4 / 3), abs=2 * grid_step(0.5))
    assert result["baseline"] == result["neg"] == pytest.approx(0.5 - math.log10(2.1), abs=2 * grid_step(0.5))
    # Only the method at 0 is feasible: ratio 1, the baseline 1.05, tau = 2 -> max_tau 0.4.
    alone = compute_aup({"best": {"t": {"baseline": -5.0, "m": 0.0}}}, {"t": "maximize"})["best"]
    assert alone["m"] == 0.4
    assert alone["baseline"] == pytest.approx(0.4 - math.log10(1.05), abs=2 * grid_step(0.4))
    # A baseline of exactly 0 and a better method: the baseline is the worst feasible (2), m the best.
    assert task_ratios({"baseline": 0.0, "m": 2.0}, "baseline", "maximize").ratios == {"baseline": 2.0, "m": 1.0}


def test_all_negative_scores():
    # MLGym's default: all infeasible -> worst_ratio 1, everyone at 1.05, tau 2, max_tau 0.4.
    scores = {"baseline": -3.0, "a": -1.0, "b": -2.0}
    ratios = task_ratios(scores, "baseline", "maximize")
    assert ratios.ratios == pytest.approx({"baseline": 1.05, "a": 1.05, "b": 1.05}) and ratios.tau == 2.0
    result = compute_aup({"best": {"t": scores}}, {"t": "maximize"})["best"]
    assert result == pytest.approx({m: 0.4 - math.log10(1.05) for m in scores}, abs=2 * grid_step(0.4))
    # Negative scores made feasible: lo = -3, hi = -1, t = (s + 3) / 2 -> r = 2 / (1 + t) (maximise).
    ratios = task_ratios(scores, "baseline", "maximize", negative_infeasible=False)
    assert ratios.ratios == pytest.approx({"baseline": 2.0, "b": 4 / 3, "a": 1.0}) and ratios.tau == 3.0
    # Minimise: best is -3 (a), r = 1 + t.
    ratios = task_ratios({"baseline": -1.0, "a": -3.0, "b": -2.0}, "baseline", "minimize", negative_infeasible=False)
    assert ratios.ratios == pytest.approx({"a": 1.0, "b": 1.5, "baseline": 2.0})


def test_scores_of_both_signs_when_negatives_are_feasible():
    # A reward: baseline -5, zero 0, top 5 -> lo -5, hi 5, t = (s + 5) / 10.
    ratios = task_ratios(
        {"baseline": -5.0, "zero": 0.0, "top": 5.0, "bad": -6.0}, "baseline", "maximize", negative_infeasible=False
    )
    assert ratios.ratios == pytest.approx({"baseline": 2.0, "zero": 4 / 3, "top": 1.0, "bad": 2.1})
    # An R^2 that is minimised? No: a loss with a negative baseline, minimised: lo -1, hi 3.
    ratios = task_ratios({"baseline": 3.0, "a": -1.0, "b": 1.0}, "baseline", "minimize", negative_infeasible=False)
    assert ratios.ratios == pytest.approx({"a": 1.0, "b": 1.5, "baseline": 2.0})
    table = {"t": {"baseline": -5.0, "zero": 0.0, "top": 5.0}}
    result = compute_aup({"best": table}, {"t": "maximize"}, negative_infeasible=False)["best"]
    assert result["top"] == 0.5
    assert result["zero"] == pytest.approx(0.5 - math.log10(4 / 3), abs=2 * grid_step(0.5))
    assert result["baseline"] == pytest.approx(0.5 - math.log10(2), abs=2 * grid_step(0.5))


def test_a_ratio_that_overflows_is_clipped_and_tau_stays_finite():
    cap = ratio_cap(0.05)
    assert math.isfinite(cap * 1.05) and not math.isfinite(math.nextafter(cap, math.inf) * 1.05)
    assert cap == pytest.approx(sys.float_info.max / 1.05) and ratio_cap(0.0) == sys.float_info.max
    # 1e300 / 1e-300 overflows: clipped to the cap; the penalty cap * 1.05 is about 1.797e308.
    ratios = task_ratios({"baseline": 1e-300, "a": 1e300}, "baseline", "maximize")
    assert ratios.ratios["baseline"] == ratios.worst_ratio == cap and ratios.ratios["a"] == 1.0
    assert math.isfinite(ratios.tau) and ratios.tau == float(math.ceil(cap * 1.05))
    # max_tau = ceil(10 * log10(1.797e308)) / 10 = ceil(3082.5) / 10
    assert max_tau([{"t": ratios}]) == 308.3
    result = compute_aup({"best": {"t": {"baseline": 1e-300, "a": 1e300}}}, {"t": "maximize"})["best"]
    assert result["a"] == 308.3 and 0 <= result["baseline"] < 1
    # A ratio of 1e306 still fits: MLGym's numbers, unclipped.
    assert task_ratios({"baseline": 1e-300, "a": 1e6}, "baseline", "maximize").worst_ratio == 1e6 / 1e-300
    # Scores near the float limits, of both signs: hi - lo overflows, the shift still works.
    ratios = task_ratios(
        {"baseline": -1.7e308, "a": 1.7e308, "b": 0.0}, "baseline", "maximize", negative_infeasible=False
    )
    assert ratios.ratios == pytest.approx({"baseline": 2.0, "b": 4 / 3, "a": 1.0})


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_non_finite_score_is_rejected_naming_table_task_and_method(bad):
    tables = {"best": BEST, "last": {"blotto": {"baseline": 1.0, "react": bad}}}
    with pytest.raises(NonFiniteScoreError) as caught:
        compute_aup(tables, {"blotto": "maximize"})
    assert str(caught.value) == (
        f"score of method 'react' on task 'blotto' (table 'last') is {bad!r}: scores must be finite numbers"
    )
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ResearchGymError)
    assert (caught.value.table, caught.value.task, caught.value.method) == ("last", "blotto", "react")
    with pytest.raises(NonFiniteScoreError, match="method 'baseline' on task 't1' .table 'best'."):
        tables_ratios({"best": {"t1": {"baseline": bad, "a": 1.0}}}, {"t1": "minimize"})
    with pytest.raises(ValueError, match="method 'a' on task 'x'"):
        task_ratios({"baseline": 1.0, "a": bad}, "baseline", "minimize", task="x")


def test_an_integer_too_large_for_a_float_is_rejected_too():
    with pytest.raises(NonFiniteScoreError, match="method 'a' on task 't' .table 'best'. is inf"):
        compute_aup({"best": {"t": {"baseline": 1, "a": 10**400}}}, {"t": "maximize"})


def test_none_is_still_no_valid_result():
    ratios = task_ratios({"baseline": 0.0, "a": None, "b": 3.0}, "baseline", "maximize")
    assert ratios.ratios == pytest.approx({"baseline": 2.0, "b": 1.0, "a": 2.1})


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


finite = st.floats(allow_nan=False, allow_infinity=False)
any_score = st.one_of(st.none(), finite, st.sampled_from([0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324]))


@st.composite
def finite_tables(draw):
    n_tasks = draw(st.integers(1, 4))
    methods = ["baseline"] + [f"m{i}" for i in range(draw(st.integers(1, 4)))]
    names = draw(st.sampled_from([["best"], ["best", "last"]]))
    tables = {name: {f"t{t}": {m: draw(any_score) for m in methods} for t in range(n_tasks)} for name in names}
    directions = {f"t{t}": draw(st.sampled_from(["maximize", "minimize"])) for t in range(n_tasks)}
    return tables, directions


@settings(max_examples=300, deadline=None)
@given(finite_tables(), st.booleans())
def test_every_finite_table_gives_finite_ratios_and_aup(data, negative_infeasible):
    tables, directions = data
    all_ratios = tables_ratios(tables, directions, negative_infeasible=negative_infeasible)
    for table in all_ratios.values():
        for ratios in table.values():
            assert 1.0 <= ratios.worst_ratio <= ratio_cap() and math.isfinite(ratios.tau) and ratios.tau >= 2.0
            for r in ratios.ratios.values():
                assert math.isfinite(r) and r >= 1.0
    top = max_tau(list(all_ratios.values()))
    assert math.isfinite(top) and top >= 0.4  # every tau_t >= ceil(1.05) = 2
    result = compute_aup(tables, directions, negative_infeasible=negative_infeasible)
    assert set(result) == set(tables)
    for values in result.values():
        for value in values.values():
            assert math.isfinite(value) and 0.0 <= value <= top


def mlgym_ratios(scores, direction, eps=0.05):
    """The SPEC's formula written out, for tables where it is defined (feasible scores > 0)."""
    baseline = scores["baseline"]
    ok = {
        m: s
        for m, s in scores.items()
        if s is not None and s >= 0 and (s >= baseline if direction == "maximize" else s <= baseline)
    }
    best = max(ok.values()) if direction == "maximize" else min(ok.values())
    worst = min(ok.values()) if direction == "maximize" else max(ok.values())
    worst_ratio = best / worst if direction == "maximize" else worst / best
    ratios = {m: (best / s if direction == "maximize" else s / best) for m, s in ok.items()}
    return {m: ratios.get(m, worst_ratio * (1 + eps)) for m in scores}, worst_ratio, math.ceil(worst_ratio * (1 + eps))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.floats(-100, 1e6), st.floats(1e-300, 1e-3))
    ),
    st.floats(1e-6, 1e6),
    st.sampled_from(["maximize", "minimize"]),
)
def test_positive_feasible_scores_give_exactly_mlgyms_numbers(others, baseline, direction):
    scores = {"baseline": baseline, **others}
    assume(all(s != 0 for s in others.values()))  # a feasible 0 is outside MLGym's formula
    try:
        expected, worst_ratio, tau = mlgym_ratios(scores, direction)
    except OverflowError:  # so is a ratio too large for floats (a subnormal score)
        assume(False)
    ratios = task_ratios(scores, "baseline", direction)
    assert ratios.ratios == expected and ratios.worst_ratio == worst_ratio and ratios.tau == tau


def test_aup_command_prints_the_csv_and_draws_the_plot(tmp_path):
    best = tmp_path / "best.csv"
    best.write_text("Task,baseline,a,b\nt1,1,2,1.5\nt2,10,5,\n")
    plot = tmp_path / "profiles.png"
    result = CliRunner().invoke(
        app, ["aup", "--best", str(best), "--last", str(best), "--minimize", "t2", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Model,Best AUP,Last AUP" and lines[1] == "a,0.500,0.500"
    assert plot.stat().st_size > 10_000
    bad = tmp_path / "bad.csv"
    bad.write_text("Task,baseline,a\nt1,1,abc\n")
    result = CliRunner().invoke(app, ["aup", "--best", str(bad)])
    assert result.exit_code == 2 and "line 2, column 'a'" in result.output
    infinite = tmp_path / "infinite.csv"
    infinite.write_text("Task,baseline,a\nt1,1,2\nt2,1,inf\n")
    result = CliRunner().invoke(app, ["aup", "--best", str(infinite)])
    assert result.exit_code == 2, result.output
    assert "line 3, column 'a' (task 't2'): 'inf' is not a finite number" in " ".join(result.output.split())
    zeros = tmp_path / "zeros.csv"
    zeros.write_text("Task,baseline,a\nt1,0,0\nt2,-5,0\n")
    result = CliRunner().invoke(app, ["aup", "--best", str(zeros), "--minimize", "t1"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == "a,0.400,"
