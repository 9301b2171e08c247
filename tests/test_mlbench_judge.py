"""ML-Bench judge on a tiny real git repository made here: pinned checkout, the repository's own
argparse parser, typed comparison, type check, sandboxed execution where a timeout fails; code
extraction; pass@k against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlbench_toy import TRAIN_SAMPLE, make_toy_repo

from researchgym.mlbench.data import MLBenchError, load_samples
from researchgym.mlbench.extract import extract_code
from researchgym.mlbench.judge import Judge, find_invocation, same_value, shell_words
from researchgym.mlbench.metrics import first_pass_at_k, pass_at_k
from researchgym.mlbench.repos import RepoPin, materialize
from researchgym.mlbench.schema import Sample

# The toy repository is materialised in a cache of this module, not the user's.
pytestmark = pytest.mark.usefixtures("private_researchgym_cache")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, str]:
    origin = tmp_path_factory.mktemp("origin")
    return origin, make_toy_repo(origin)


@pytest.fixture(scope="module")
def judge(repo, tmp_path_factory) -> Judge:
    origin, commit = repo
    tree = materialize(
        RepoPin(name="toy", source="git", url=str(origin), commit=commit), root=tmp_path_factory.mktemp("repos")
    )
    assert "argparse" in (tree / "examples" / "train.py").read_text()  # the pinned commit, not HEAD
    return Judge(tree)


SAMPLE = TRAIN_SAMPLE
GOLD = SAMPLE.output


def test_an_unpinned_git_repository_is_refused(repo, tmp_path):
    with pytest.raises(MLBenchError, match="no pinned commit"):
        materialize(RepoPin(name="toy", source="git", url=str(repo[0])), root=tmp_path)


def test_the_gold_command_passes_every_check(judge):
    result = judge.judge(SAMPLE, "bash", GOLD)
    assert result.passed, result
    assert result.parser == "argparse" and result.parsed["lr"] == 0.0 and result.parsed["hidden_sizes"] == [0, 5]


def test_equal_values_written_differently_pass(judge):
    result = judge.judge(
        SAMPLE, "bash", "cd . && python -u train.py --epochs=5 --lr 0.0 --dataset citeseer --hidden-sizes 0 5 --no-cuda"
    )
    assert result.arguments.passed, result.arguments


def test_a_wrong_value_fails_even_when_its_text_is_elsewhere_in_the_command(judge):
    # "0" and "5" both appear (in --hidden-sizes 0 5 and --epochs 5), which fooled ML-Bench's substring judge.
    result = judge.judge(SAMPLE, "bash", "python train.py --dataset citeseer --lr 5 --epochs 5 --hidden-sizes 0 5")
    assert not result.arguments.passed and "lr: expected '0', got 5.0" in result.arguments.detail
    assert result.execution.passed and not result.passed


def test_a_value_the_parser_rejects_fails_the_argument_check(judge):
    result = judge.judge(SAMPLE, "bash", "python train.py --dataset pubmed --lr 0 --epochs 5 --hidden-sizes 0 5")
    assert not result.arguments.passed and "rejected" in result.arguments.detail


def test_a_command_that_hangs_fails_on_the_timeout(judge):
    result = judge.judge(SAMPLE, "bash", GOLD + " --sleep 60")
    assert result.arguments.passed and not result.execution.passed
    assert "timed out" in result.execution.detail and not result.passed


def test_python_code_for_a_bash_task_fails_the_type_check(judge):
    code = "import subprocess\nsubprocess.run(['python', 'train.py', '--dataset', 'citeseer'])"
    result = judge.judge(SAMPLE, "python", code)
    assert not result.type.passed and not result.passed


def test_missing_outputs_and_wrong_output_fail_execution(judge):
    result = judge.judge(SAMPLE, "bash", GOLD + " --out elsewhere.json")
    assert not result.execution.passed and "model.json" in result.execution.detail


def test_value_comparison_is_typed():
    assert same_value("0", 0.0) and same_value("0.10", 0.1) and not same_value("0", 10)
    assert same_value("true", True) and same_value("false", False) and not same_value("0", True)
    assert same_value("1 2", [1, 2]) and not same_value("1 2", [1, 2, 3])
    assert same_value("./data/x.csv", "data/x.csv") and not same_value("cora", "Cora")
    assert not same_value("0", "10")  # not a substring match


def test_shell_words_and_invocations():
    options, positional = shell_words(["cfg.cfg", "--lr=0.1", "-n", "5", "--flag", "--values", "1", "-2", "--x", "-1"])
    assert options == {"lr": "0.1", "n": "5", "flag": True, "values": ["1", "-2"], "x": "-1"}
    assert positional == ["cfg.cfg"]
    assert find_invocation("cd src && CUDA=0 python -u run.py --a 1") == ("script", "run.py", ["--a", "1"], "src")
    assert find_invocation("python -m spacy train c.cfg")[:2] == ("module", "spacy")
    assert find_invocation("sacrebleu ref.txt -i hyp.txt")[:2] == ("console", "sacrebleu")


def test_pipelines_and_redirections_are_not_arguments():
    assert find_invocation("cat hyp.txt | sacrebleu ref.txt -w 0 > out.json 2>&1") == (
        "console",
        "sacrebleu",
        ["ref.txt", "-w", "0"],
        "",
    )
    assert find_invocation("time python run.py --n 2 >> log.txt < in.txt; echo done") == (
        "script",
        "run.py",
        ["--n", "2"],
        "",
    )
    assert find_invocation("head -n 3 x | python -m pkg.cli --sep '|' 2>/dev/null | tee log") == (
        "module",
        "pkg.cli",
        ["--sep", "|"],
        "",
    )


CLICK_TOOL = """
import click

@click.group()
def cli():
    pass

@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("config")
@click.option("--smooth-method", "-s", "method", type=click.Choice(["exp", "floor"]), default="exp")
@click.option("--steps", type=int, default=1)
@click.pass_context
def train(ctx, config, method, steps):
    open("ran.txt", "w").write("the command ran")

if __name__ == "__main__":
    cli()
"""


def test_click_programs_are_parsed_by_their_own_parser_without_running(tmp_path):
    pytest.importorskip("click")
    (tmp_path / "tool.py").write_text(CLICK_TOOL)
    sample = Sample(
        id="c1",
        repo="toy",
        path=".",
        arguments={"config": "a.cfg", "smooth-method": "floor", "steps": "3", "paths.train": "x.spacy"},
        instruction="train",
        oracle="",
        type="bash",
        output="python tool.py train a.cfg -s floor --steps 3 --paths.train x.spacy",
    )
    judge = Judge(tmp_path)
    good = judge.judge(
        sample, "bash", "python tool.py train ./a.cfg --smooth-method=floor --steps 3 --paths.train x.spacy"
    )
    assert good.parser == "click" and good.parsed["method"] == "floor" and good.parsed["steps"] == 3
    assert good.arguments.passed, good.arguments.detail  # by option string, extras as shell words
    wrong = judge.judge(sample, "bash", "python tool.py train a.cfg -s exp --steps 3 --paths.train x.spacy")
    assert not wrong.arguments.passed and "smooth-method" in wrong.arguments.detail
    rejected = judge.judge(sample, "bash", "python tool.py train a.cfg -s floor --steps 3.5 --paths.train x.spacy")
    assert not rejected.arguments.passed and "rejected" in rejected.arguments.detail
    assert not (tmp_path / "ran.txt").exists()  # the judge works on copies


def test_code_extraction_prefers_the_tasks_language():
    reply = "Here:\n```python\nprint(1)\n```\nor\n```bash\n$ python train.py --lr 0\n```\n"
    assert extract_code(reply, bash_task=True) == ("bash", "python train.py --lr 0")
    assert extract_code(reply, bash_task=False) == ("python", "print(1)")
    assert extract_code("python train.py --lr 0") == ("", "python train.py --lr 0")
    assert extract_code("```\nls\n```") == ("", "ls")


def test_unbiased_pass_at_k_against_hand_computed_values():
    # n=5, c=2: pass@1 = 2/5; pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7; pass@5 = 1.
    outcomes = {"a": [False, True, False, True, False], "b": [False] * 5, "c": [True] * 5}
    assert pass_at_k({"a": outcomes["a"]}, 1) == pytest.approx(0.4)
    assert pass_at_k({"a": outcomes["a"]}, 2) == pytest.approx(0.7)
    assert pass_at_k(outcomes, 1) == pytest.approx((0.4 + 0 + 1) / 3)
    assert pass_at_k(outcomes, 5) == pytest.approx(2 / 3)
    # ML-Bench's number depends on order: task a's first pass is at position 2.
    assert first_pass_at_k(outcomes, 1) == pytest.approx(1 / 3)
    assert first_pass_at_k(outcomes, 2) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="needs at least 6"):
        pass_at_k(outcomes, 6)


def test_samples_load_from_jsonl_with_arguments_as_text_and_errors_name_the_line(tmp_path):
    good = tmp_path / "s.jsonl"
    good.write_text(
        '{"id": 1, "github": "https://github.com/x/toy", "instruction": "do", '
        '"arguments": "{\'lr\': 0, \'--epochs\': 5}", "type": "Bash Script", "output": "python t.py"}\n'
    )
    [sample] = load_samples(good)
    assert sample.arguments == {"lr": "0", "epochs": "5"} and sample.repo_name == "toy" and sample.is_bash
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + '{"id": 2, "instruction": "x", "arguments": "__import__(\'os\')"}\n')
    with pytest.raises(MLBenchError, match=r"bad.jsonl:2: field 'arguments'"):
        load_samples(bad)


def test_the_gold_passes_in_the_local_sandbox_too(repo, tmp_path_factory):
    origin, commit = repo
    tree = materialize(
        RepoPin(name="toy", source="git", url=str(origin), commit=commit), root=tmp_path_factory.mktemp("repos-local")
    )
    result = Judge(tree, sandbox="local").judge(SAMPLE, "bash", GOLD)
    assert result.passed, result


def test_wrappers_around_the_program_are_taken_off():
    for prefix in (
        "timeout 30",
        "timeout -s INT -k 5 1m",
        "nice",
        "nice -n 5",
        "env",
        "env -u X A=1 B=2",
        "time -p",
        "nohup",
        "A=1 time nice -n 2 timeout 9",
    ):
        assert find_invocation(f"{prefix} python run.py --n 2") == ("script", "run.py", ["--n", "2"], ""), prefix
    assert find_invocation("timeout 10 sacrebleu r -w 0")[:3] == ("console", "sacrebleu", ["r", "-w", "0"])


def test_what_ran_decides_not_what_was_written(judge):
    never_ran = [
        "cat > x.sh <<'EOF'\n" + GOLD + "\nEOF\ntouch model.json; echo trained citeseer",
        "true || " + GOLD + "\ntouch model.json; echo trained citeseer",
        "python() { touch model.json; echo trained citeseer; }\n" + GOLD,
    ]
    for code in never_ran:
        result = judge.judge(SAMPLE, "bash", code)
        assert not result.arguments.passed and "never ran" in result.arguments.detail, code
        assert not result.execution.passed and not result.passed, code
    other = judge.judge(SAMPLE, "bash", "cp train.py other.py && python other.py " + GOLD.split(" ", 2)[2])
    assert not other.arguments.passed and "examples/other" in other.arguments.detail


def test_an_extra_option_that_changes_behaviour_fails_unless_free(judge):
    strict = SAMPLE.model_copy(update={"free_arguments": []})
    result = judge.judge(strict, "bash", GOLD + " --no-cuda")
    assert not result.arguments.passed and "no_cuda" in result.arguments.detail
    assert judge.judge(SAMPLE, "bash", GOLD + " --no-cuda").passed  # listed as free


def test_paths_and_prefixes_are_resolved(judge):
    for code in [
        "cd .. && python examples/train.py --dataset citeseer --lr 0 --epochs 5 --hidden-sizes 0 5 "
        "--out examples/model.json",
        GOLD + ' --out "$PWD/model.json"',
        "timeout 30 nice -n 3 env A=1 " + GOLD,
        "time " + GOLD,
    ]:
        result = judge.judge(SAMPLE, "bash", code)
        assert result.passed, (code, result)


def test_an_output_made_before_the_answer_ran_does_not_count(judge):
    made = SAMPLE.model_copy(update={"setup": "echo '{}' > model.json\n"})
    result = judge.judge(made, "bash", "echo trained citeseer; " + GOLD.replace("train.py", "train.py --out x.json"))
    assert not result.execution.passed and "before the answer ran" in result.execution.detail


def test_the_original_mode_applies_ml_benchs_rules(judge):
    original = Judge(judge.repo_dir, mode="original")
    forged = original.judge(SAMPLE, "bash", "cat > x.sh <<'EOF'\n" + GOLD + "\nEOF\n")
    assert forged.passed and forged.mode == "original"  # substring arguments, no outputs: it passes
    hang = original.judge(SAMPLE, "bash", GOLD + " --sleep 60")
    assert hang.execution.passed and "counted as a pass" in hang.execution.detail
    assert not original.judge(SAMPLE, "bash", "python -m pkg --dataset citeseer --lr 0 --epochs 5").type.passed
    assert judge.judge(SAMPLE, "bash", GOLD).to_dict()["mode"] == "strict"
    with pytest.raises(ValueError, match="unknown judge mode"):
        Judge(judge.repo_dir, mode="lenient")


def test_the_cli_stores_the_judge_mode_with_each_judgment(repo, tmp_path):
    import json

    from openai_server import ChatServer
    from typer.testing import CliRunner

    from researchgym.cli import app
    from researchgym.runs.store import Store

    origin, commit = repo
    (tmp_path / "pins.yaml").write_text(f"- name: toy\n  source: git\n  url: {origin}\n  commit: {commit}\n")
    sample = SAMPLE.model_copy(update={"repo": "toy"})
    (tmp_path / "samples.jsonl").write_text(json.dumps(sample.model_dump()) + "\n")
    forged = "```bash\ncat > x.sh <<'EOF'\n" + GOLD + "\nEOF\ntouch model.json; echo trained citeseer\n```"
    verdicts = {}
    for mode in ("strict", "original"):
        server = ChatServer(replies=[forged]).start()
        try:
            result = CliRunner().invoke(
                app,
                [
                    "mlbench",
                    "llm",
                    "--model",
                    "openai/test-model",
                    "--api-base",
                    server.api_base,
                    "--judge",
                    mode,
                    "--data",
                    str(tmp_path / "samples.jsonl"),
                    "--pins",
                    str(tmp_path / "pins.yaml"),
                    "--out",
                    str(tmp_path / "run"),
                ],
                env={"COLUMNS": "200"},
            )
        finally:
            server.stop()
        assert result.exit_code == 0, result.output
        [row] = [r for r in Store(tmp_path / "run").mlbench_rows() if json.loads(r["detail"])["mode"] == mode]
        verdicts[mode] = bool(row["passed"])
    assert verdicts == {"strict": False, "original": True}


def test_removing_the_script_does_not_take_the_gold_away(judge):
    fresh = Judge(judge.repo_dir)  # nothing cached: the gold is parsed in this very judging
    result = fresh.judge(SAMPLE, "bash", "rm train.py; touch model.json; echo trained citeseer\n# " + GOLD)
    assert not result.arguments.passed and "never ran" in result.arguments.detail and not result.passed


# ------------------------------------------------------------- Python tasks: the calls that ran
PY_SAMPLE = Sample(
    id=2,
    path="./examples",
    type="Python Code",
    instruction="Fit an Averager with rate 0.25 and 40 steps on `values`; print its estimate and spread",
    arguments={"rate": "0.25", "steps": "40"},
    prefix_code="values = [1.0, 2.0, 6.0]\n",
    expected_stdout=r"estimate: 3\.4865\nspread: 2\.1622",
    timeout_s=10,
    output="from toylib import Averager, spread\n\nmodel = Averager(rate=0.25, steps=40).fit(values)\n"
    "print(f'estimate: {model.estimate_:.4f}')\nprint(f'spread: {spread(model, values):.4f}')",
)
PY_PRINT = "print(f'estimate: {model.estimate_:.4f}')\nprint(f'spread: {spread(model, values):.4f}')"


def test_a_python_answer_is_judged_by_the_library_calls_that_ran(judge):
    gold = judge.judge(PY_SAMPLE, "python", PY_SAMPLE.output)
    assert gold.passed, gold
    assert gold.parser == "calls" and "toylib:Averager" in gold.parsed["_calls"]
    assert not judge.repo_dir.joinpath("examples", ".researchgym-answer.py").exists()  # judged in a copy
    positional = judge.judge(
        PY_SAMPLE,
        "python",
        "import toylib\nsettings = (0.25, 40)\n"
        "model = toylib.Averager(*settings)\nmodel.fit(values)\nspread = toylib.spread\n" + PY_PRINT,
    )
    assert positional.passed, positional  # named by the callee's signature, whatever the expression


def test_a_python_value_that_never_reached_the_library_fails(judge):
    wrong = judge.judge(PY_SAMPLE, "python", PY_SAMPLE.output.replace("rate=0.25", "rate=0.5"))
    assert (
        not wrong.arguments.passed
        and "rate: expected '0.25', the library calls that ran got 0.5" in wrong.arguments.detail
    )
    dead = (
        "from toylib import Averager, spread\n# Averager(rate=0.25, steps=40)\nif len(values) > 5:\n"
        "    model = Averager(rate=0.25, steps=40).fit(values)\nelse:\n    model = Averager().fit(values)\n" + PY_PRINT
    )
    result = judge.judge(PY_SAMPLE, "python", dead)
    assert not result.arguments.passed and "left it at its default 0.5" in result.arguments.detail
    nothing = judge.judge(PY_SAMPLE, "python", "print('estimate:', float('3.4865'))\nprint('spread: 2.1622')")
    assert not nothing.arguments.passed and "never called toylib" in nothing.arguments.detail


def test_python_output_printed_from_constants_is_not_a_result(judge):
    unfitted = "from toylib import Averager\nmodel = Averager(rate=0.25, steps=40)\n"
    for forged in [
        "print('estimate: 3.4865\\nspread: 2.1622')",
        "text = 'estimate: 3.4865\\nspread: 2.1622'\nprint(text)",
        "print('estimate:', 3.4865)\nvalue = 2.1622\nprint('spread:', value)",
    ]:
        result = judge.judge(PY_SAMPLE, "python", unfitted + forged)
        assert result.arguments.passed and not result.execution.passed, forged
        assert "printed from constants written in the answer" in result.execution.detail, forged
    chatty = judge.judge(
        PY_SAMPLE, "python", "print('fitting the averager ...')\n" + PY_SAMPLE.output + "\nprint('done')"
    )
    assert chatty.passed, chatty  # literal lines elsewhere do not spoil a computed result


def test_a_python_answer_runs_as_python_would_run_it(judge):
    classy = (
        "import toylib\n\nclass Slow(toylib.Averager):\n    def __init__(self):\n"
        "        super().__init__(rate=0.25, steps=40)\n\nif __name__ == '__main__':\n"
        "    model = Slow().fit(values)\n    spread = toylib.spread\n"
        + "\n".join("    " + line for line in PY_PRINT.splitlines())
    )
    result = judge.judge(PY_SAMPLE, "python", classy)
    assert result.passed, result  # zero-argument super() and __main__ work under the recorder
    broken = judge.judge(PY_SAMPLE, "python", "from toylib import Averager\nmodel = Averager(rate=0.25, steps=40\n")
    assert not broken.execution.passed and "SyntaxError" in broken.execution.detail
    assert "researchgym_pyanswer" not in broken.execution.detail
    failing = judge.judge(
        PY_SAMPLE,
        "python",
        "from toylib import Averager\nAverager(rate=0.25, steps=40).fit([])\nraise RuntimeError('boom')",
    )
    assert "RuntimeError: boom" in failing.execution.detail and "exec(code" not in failing.execution.detail
    busy = judge.judge(PY_SAMPLE, "python", "words = [str(i).strip() for i in range(5000)]\n" + PY_SAMPLE.output)
    assert busy.passed, busy  # thousands of other calls before the library's do not crowd it out
    original = Judge(judge.repo_dir, mode="original").judge(PY_SAMPLE, "python", PY_SAMPLE.output)
    assert original.passed and original.mode == "original"  # the paper's rules run the file plainly
