"""The ML-Bench offline suite, judged for real: every gold command passes; a wrong argument value
(whose text still appears elsewhere), a hang and Python code for a bash task fail the right check;
ML-Agent runs on the suite behind a real OpenAI-style server, and with local/smollm2 (slow)."""

from __future__ import annotations

import random
import shlex
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from openai_server import ChatServer

from researchgym.mlbench.agent import MLAgent, run_agent_setting
from researchgym.mlbench.data import load_samples
from researchgym.mlbench.llm import Repositories, run_llm_setting
from researchgym.mlbench.repos import suite_pins
from researchgym.mlbench.schema import Sample
from researchgym.models import create_model
from researchgym.models.scripted import ScriptedModel
from researchgym.runs.store import Store

pytest.importorskip("gensim", reason="the mlbench extra is not installed")
pytest.importorskip("sacrebleu", reason="the mlbench extra is not installed")
pytest.importorskip("spacy", reason="the mlbench extra is not installed")
pytest.importorskip("tokenizers", reason="the mlbench extra is not installed")
pytest.importorskip("sklearn", reason="the mlbench extra is not installed")

SAMPLES = load_samples("offline")


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    return Repositories(suite_pins("offline"))


def fenced(code: str, language: str = "bash") -> str:
    return f"```{language}\n{code}\n```"


def one_per_repo() -> list[Sample]:
    """The first bash sample of each repository that has one (the checks below run shell commands)."""
    seen: dict[str, Sample] = {}
    for sample in SAMPLES:
        if sample.is_bash:
            seen.setdefault(sample.repo_name, sample)
    return list(seen.values())


def test_the_suite_has_70_samples_over_5_repositories():
    assert len(SAMPLES) >= 70
    by_repo = defaultdict(int)
    for sample in SAMPLES:
        by_repo[sample.repo_name] += 1
        # a Python task's arguments are the values its library calls must receive
        assert sample.instruction and sample.output and sample.oracle and sample.arguments, sample.key
        assert sample.expected_outputs or sample.expected_stdout, sample.key
    assert len(by_repo) >= 5 and min(by_repo.values()) >= 5, by_repo
    assert sum(not sample.is_bash for sample in SAMPLES) >= 5
    assert set(by_repo) <= set(suite_pins("offline"))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_every_gold_command_passes_every_check(repos, tmp_path):
    store = Store(tmp_path)
    model = ScriptedModel([fenced(s.output, "bash" if s.is_bash else "python") for s in SAMPLES], name="gold")
    summary = run_llm_setting(SAMPLES, model, repos, store, run_id="gold", setting="oracle", k=1, workers=2)
    failed = [(r["sample"], r["detail"]) for r in store.mlbench_rows("gold") if not r["passed"]]
    assert not failed, "\n".join(f"{sample}: {detail}" for sample, detail in failed)  # whole, never cut
    assert summary.pass_at(1) == 1.0 and summary.samples == len(SAMPLES)


def wrong_value(sample: Sample) -> str | None:
    """The gold command with one numeric argument's value changed to another value that still
    appears somewhere else in the command (so a substring judge would pass it)."""
    words = shlex.split(sample.output)
    numbers = [w for w in words if w.replace(".", "", 1).isdigit()]
    for key, value in sample.arguments.items():
        for index, word in enumerate(words[:-1]):
            if word.lstrip("-").replace("-", "_") == key.replace("-", "_") and words[index + 1] == value:
                others = [n for n in numbers if n != value]
                if not value.replace(".", "", 1).isdigit() or not others:
                    continue
                words[index + 1] = others[0]
                return shlex.join(words)
    return None


@pytest.mark.slow
def test_a_wrong_value_a_hang_and_python_code_fail_their_checks(repos, tmp_path):
    chosen, replies, expected = [], [], []
    for sample in one_per_repo():
        answers = [
            (fenced(f"{sample.output} && sleep 600"), "hang"),
            (f"```python\nimport subprocess\nsubprocess.run({sample.output!r}, shell=True, check=True)\n```", "python"),
        ]
        mutated = wrong_value(sample)
        if mutated:
            answers.insert(0, (fenced(mutated), "wrong value"))
        for reply, kind in answers:
            chosen.append(sample.model_copy(update={"timeout_s": min(sample.timeout_s, 20.0)}))
            replies.append(reply)
            expected.append(kind)
    assert "wrong value" in expected

    def judged(index: int) -> dict:
        """One case in a run of its own (several cases share a sample key and attempt)."""
        store = Store(tmp_path / f"case{index}")
        run_llm_setting([chosen[index]], ScriptedModel([replies[index]]), repos, store, run_id="bad", k=1)
        [row] = store.mlbench_rows("bad")
        return row

    for sample in chosen:
        repos.judge(sample)  # materialised here, not raced for by the threads
    with ThreadPoolExecutor(max_workers=3) as pool:  # the hangs wait out their timeouts side by side
        rows = list(pool.map(judged, range(len(chosen))))
    for sample, kind, row in zip(chosen, expected, rows):
        assert not row["passed"], (kind, sample.key)
        if kind == "wrong value":
            assert not row["arguments_ok"] and row["type_ok"], (sample.key, row["detail"])
        elif kind == "hang":
            assert row["arguments_ok"] and not row["execution_ok"] and "timed out" in row["detail"], sample.key
        else:
            assert not row["type_ok"], sample.key


def _readme_count(repos: Repositories, sample: Sample) -> int:
    return sum(
        1 for p in repos.tree(sample.repo_name).rglob("*") if p.is_file() and p.name.lower().startswith("readme")
    )


@pytest.mark.slow
def test_ml_agent_runs_on_the_suite_behind_a_server(repos, tmp_path):
    samples = one_per_repo()
    replies = []
    for sample in samples:
        if _readme_count(repos, sample) > 1:
            replies.append("1")  # the README ranking: the first listed
        replies.append(fenced(sample.output))
    server = ChatServer(replies=replies).start()
    try:
        agent = MLAgent(create_model("openai/test-model", api_base=server.api_base, temperature=0.0, max_attempts=1))
        store = Store(tmp_path)
        summary = run_agent_setting(
            samples, agent, repos, store, run_id="agent", model_name="openai/test-model", out=tmp_path
        )
    finally:
        server.stop()
    rows = store.mlbench_rows("agent")
    assert len(rows) == len(samples) and all(r["passed"] for r in rows), [r["detail"] for r in rows]
    assert summary.pass_at(1) == 1.0
    assert len(list((tmp_path / "trajectories").glob("*.jsonl"))) == len(samples)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ml_agent_with_local_smollm2_produces_judged_results(repos, tmp_path):
    pytest.importorskip("transformers", reason="the local-llm extra is not installed")
    samples = random.Random(0).sample(SAMPLES, 2)
    agent = MLAgent(create_model("local/smollm2", max_output_tokens=96, temperature=0.0))
    store = Store(tmp_path)
    run_agent_setting(samples, agent, repos, store, run_id="smol", model_name="local/smollm2", out=tmp_path)
    rows = store.mlbench_rows("smol")
    assert len(rows) == 2  # judged (a weak model may well fail: the point is the whole path runs offline)
    assert all(r["detail"] and r["model"] == "local/smollm2" for r in rows)
