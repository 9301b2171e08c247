"""`researchgym report`: tables and plots of a run, from its trajectories, as Markdown and HTML.

Per task and method: best attempt (best hidden-test score of any scored artefact) and best
submission (best final score) over the method's episodes, beside the task's baseline; AUP of
both tables (the baseline is a method), mean rank and Borda count; cost and tokens; exit-status
and action-category distributions; the tasks whose scores an agent could forge (read from the
evaluator's printed output, not the result channel) are named. Directions come from each task's spec; a score, baseline,
cost or token count that is NaN or infinite (an old or imported run's) counts as missing, so no
table shows `nan` or `inf`. When the run's store holds ML-Bench judgments, an "ML-Bench"
section (analysis/mlbench.py) follows; a run of ML-Bench judgments only gets that section alone.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from pathlib import Path

from researchgym.analysis.episodes import (
    ACTION_CATEGORIES,
    EXIT_CATEGORIES,
    action_category,
    finite_number,
    load_episodes,
)
from researchgym.analysis.mlbench import MLBenchSummary, PassRates, summarize_run
from researchgym.analysis.summary import episode_cost, summarize
from researchgym.errors import ResearchGymError
from researchgym.metrics.tables import plot_profiles

STEP_BUCKET = 10


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _count(value: object) -> int:
    """A token count; 0 when missing or not a finite number (an old or imported run's NaN)."""
    number = finite_number(value)
    return 0 if number is None else int(number)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write report.md, report.html and the plots into `out_dir` (default RUN_DIR/report)."""
    episodes = load_episodes(run_dir)
    mlbench = summarize_run(run_dir)
    if not episodes and mlbench is None:
        raise ResearchGymError(
            f"{run_dir}: no finished episode (no trajectory with an `end` line) and no ML-Bench judgment was found"
        )
    out = Path(out_dir) if out_dir else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    if not episodes:  # ML-Bench judgments only: no episode tables, no plots
        assert mlbench is not None
        sections = [f"# researchgym report: {Path(run_dir).name}", *_mlbench_sections(mlbench)]
        return _write(out, sections)
    summary = summarize(episodes)
    tasks, methods, directions, baselines = summary.tasks, summary.methods, summary.directions, summary.baselines
    best, last, aup, ranks, points = summary.best, summary.last, summary.aup, summary.ranks, summary.borda

    sections = [
        f"# researchgym report: {Path(run_dir).name}",
        f"{len(episodes)} episodes, {len(tasks)} tasks, {len(methods)} methods. "
        "Best attempt = best hidden-test score of any scored artefact; best submission = best final "
        "score; both over a method's episodes.",
    ]
    rows = []
    for task in tasks:
        arrow = "max" if directions[task] == "maximize" else "min"
        rows.append(
            [task, arrow, _fmt(baselines[task])] + [f"{_fmt(best[task][m])} / {_fmt(last[task][m])}" for m in methods]
        )
    sections += ["## Scores (best attempt / best submission)", _table(["task", "dir", "baseline", *methods], rows)]
    if summary.stdout_scored:
        sections += [
            "## Scores an agent could forge",
            "In some or all of their episodes, the methods named got their scores of these tasks from "
            "the evaluator's printed output (`result: stdout`, MLGym's convention), not from the result "
            "channel only the evaluator can write, so agent "
            "code that the evaluator imports, runs or unpickles could have printed or changed them "
            "(MLGym's own task files do all three: docs/mlgym.md, 'Trust model'; docs/security.md). "
            "Compare agents that may be adversarial on tasks scored through the channel, such as "
            "researchgym's built-in ports.",
            "\n".join(f"- {task}: {', '.join(methods)}" for task, methods in summary.stdout_scored.items()),
        ]
    everyone = ["baseline", *methods]
    sections += [
        "## AUP and ranks",
        _table(
            ["method", "AUP best attempt", "AUP best submission", "mean rank", "Borda"],
            [
                [
                    m,
                    f"{aup['best attempt'][m]:.3f}",
                    f"{aup['best submission'][m]:.3f}",
                    f"{ranks[m]:.2f}",
                    f"{points[m]:g}",
                ]
                for m in everyone
            ],
        ),
    ]
    cost_rows, costs = [], summary.costs
    for method in methods:
        cell = [e for e in episodes if e.method == method]
        spent = finite_number(sum(episode_cost(e) for e in cell))
        known = all(e.model_stats.get("cost_known", True) for e in cell)
        cost_rows.append(
            [
                method,
                str(len(cell)),
                ("" if spent is None else f"${spent:.4f}") + ("" if known else " (some unpriced)"),
                str(sum(_count(e.model_stats.get("tokens_sent")) for e in cell)),
                str(sum(_count(e.model_stats.get("tokens_received")) for e in cell)),
            ]
        )
    sections += ["## Cost", _table(["method", "episodes", "cost", "tokens sent", "tokens received"], cost_rows)]
    exits = summary.exits
    sections += [
        "## Exit statuses",
        _table(["method", *EXIT_CATEGORIES], [[m, *(str(exits[m][c]) for c in EXIT_CATEGORIES)] for m in methods]),
    ]
    actions = Counter(action_category(a) for e in episodes for a in e.actions)
    buckets: dict[int, Counter] = defaultdict(Counter)
    for episode in episodes:
        for index, action in enumerate(episode.actions):
            buckets[index // STEP_BUCKET][action_category(action)] += 1
    bucket_rows = [
        [f"{b * STEP_BUCKET + 1}-{(b + 1) * STEP_BUCKET}", *(str(buckets[b][c]) for c in ACTION_CATEGORIES)]
        for b in sorted(buckets)
    ]
    sections += [
        "## Actions",
        _table(["", *ACTION_CATEGORIES], [["all steps", *(str(actions[c]) for c in ACTION_CATEGORIES)]]),
        "### By step",
        _table(["steps", *ACTION_CATEGORIES], bucket_rows),
    ]

    if mlbench is not None:
        sections += _mlbench_sections(mlbench)
    plots = _plots(out, best, last, directions, aup, costs, exits, actions)
    sections += ["## Plots", *[f"![{name}]({name})" for name in plots]]
    return _write(out, sections)


def _write(out: Path, sections: list[str]) -> Path:
    markdown = "\n\n".join(sections) + "\n"
    (out / "report.md").write_text(markdown)
    (out / "report.html").write_text(_html(markdown))
    return out


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _mlbench_sections(mlbench: MLBenchSummary) -> list[str]:
    """The ML-Bench section: pass@k per setting, model and judge, per repository, the failed
    checks, and both judges side by side where a setting and model have both."""
    groups = mlbench.groups
    ks = sorted({g.rates.attempts for g in groups})
    k_name = f"pass@{ks[0]}" if len(ks) == 1 else "pass@k"

    def rates(r: PassRates) -> list[str]:
        return [_share(r.pass_at_1), _share(r.pass_at_k)]

    sections = [
        "## ML-Bench",
        f"{len(mlbench.answers)} judged answers. pass@1 and {k_name} are the unbiased estimator "
        "(1 - C(n-c,k)/C(n,k), averaged over samples), with k the attempts every sample has (empty when "
        "there is one); first-pass@k is ML-Bench's original number (a passing answer among the first k), "
        "for comparison only. Judge: strict (what ran) or original (ML-Bench's published rules).",
        _table(
            ["setting", "model", "judge", "samples", "attempts", "pass@1", k_name, "first-pass@k", "cost"],
            [
                [
                    g.setting,
                    g.model,
                    g.mode,
                    str(g.rates.samples),
                    str(g.rates.attempts),
                    *rates(g.rates),
                    _share(g.rates.first_pass_at_k),
                    f"${g.cost:.4f}",
                ]
                for g in groups
            ],
        ),
        "### ML-Bench by repository",
        _table(
            ["setting", "model", "judge", "repository", "samples", "pass@1", k_name],
            [
                [g.setting, g.model, g.mode, repo, str(r.samples), *rates(r)]
                for g in groups
                for repo, r in g.repos.items()
            ],
        ),
        "### ML-Bench failed checks",
        "Answers failing each check (an answer can fail several). Timeouts: execution failures that were "
        "timeouts (the strict judge); timeouts passed: timeouts the original judge counts as passing.",
        _table(
            ["setting", "model", "judge", "answers", "arguments", "type", "execution", "timeouts", "timeouts passed"],
            [
                [
                    g.setting,
                    g.model,
                    g.mode,
                    *(
                        str(v)
                        for v in (
                            g.errors.answers,
                            g.errors.arguments_failed,
                            g.errors.type_failed,
                            g.errors.execution_failed,
                            g.errors.timeouts,
                            g.errors.timeouts_passed,
                        )
                    ),
                ]
                for g in groups
            ],
        ),
    ]
    if mlbench.comparisons:
        sections += [
            "### ML-Bench: strict vs original judge",
            _table(
                [
                    "setting",
                    "model",
                    "samples",
                    "pass@1 strict",
                    "pass@1 original",
                    f"{k_name} strict",
                    f"{k_name} original",
                    "failed checks strict (arg/type/exec)",
                    "failed checks original (arg/type/exec)",
                ],
                [
                    [
                        c.setting,
                        c.model,
                        str(c.strict.rates.samples),
                        _share(c.strict.rates.pass_at_1),
                        _share(c.original.rates.pass_at_1),
                        _share(c.strict.rates.pass_at_k),
                        _share(c.original.rates.pass_at_k),
                        *(
                            f"{g.errors.arguments_failed}/{g.errors.type_failed}/{g.errors.execution_failed}"
                            for g in (c.strict, c.original)
                        ),
                    ]
                    for c in mlbench.comparisons
                ],
            ),
        ]
    return sections


def _plots(out, best, last, directions, aup, costs, exits, actions) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for suffix in ("png", "svg"):
        plot_profiles({"best attempt": best, "best submission": last}, directions, out / f"profiles.{suffix}")
    names.append("profiles.png")
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for method, cost in costs.items():
        axis.scatter(cost, aup["best attempt"][method], s=40)
        axis.annotate(
            method, (cost, aup["best attempt"][method]), fontsize=8, xytext=(4, 4), textcoords="offset points"
        )
    axis.set_xlabel("mean cost per episode (USD)")
    axis.set_ylabel("AUP (best attempt)")
    axis.set_title("AUP vs cost")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "aup_vs_cost.png")
    plt.close(figure)
    names.append("aup_vs_cost.png")
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    bottom = [0] * len(exits)
    for category in EXIT_CATEGORIES:
        heights = [exits[m][category] for m in exits]
        axes[0].bar(list(exits), heights, bottom=bottom, label=category)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes[0].set_title("exit statuses")
    axes[0].legend(fontsize=7)
    axes[0].tick_params(axis="x", labelrotation=20)
    axes[1].bar(list(ACTION_CATEGORIES), [actions[c] for c in ACTION_CATEGORIES], color="tab:green")
    axes[1].set_title("actions")
    figure.tight_layout()
    figure.savefig(out / "statuses_and_actions.png")
    plt.close(figure)
    names.append("statuses_and_actions.png")
    return names


def _html(markdown: str) -> str:
    """A small Markdown-to-HTML conversion for the report's headings, tables and images."""
    body: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells[1:])
            body.append(f"<table><tr>{head}</tr>{rest}</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1 : line.rindex(")")]
            body.append(f'<img src="{html.escape(src)}" alt="{html.escape(src)}">')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}"
    )
    head = f"<meta charset='utf-8'><title>researchgym report</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"
