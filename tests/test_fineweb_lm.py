"""FineWeb LM from the hub: prepared from a tiny mirror of kjj0/fineweb10B-gpt2 in the real shard
format, then the real baseline and evaluator run end to end in the sandbox. The evaluator's
verdicts are checked against models built to cheat: looking ahead (also with state kept in
the module), reading the hidden tokens with torch.from_file, running code at load time."""

from __future__ import annotations

import importlib.util
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the vision extra is not installed")
pytest.importorskip("huggingface_hub", reason="the hub extra is not installed")

import torch.nn.functional as F  # noqa: E402

import researchgym  # noqa: E402
from researchgym.datasets import DatasetError  # noqa: E402
from researchgym.errors import EvaluationError  # noqa: E402
from researchgym.evaluation import evaluate  # noqa: E402
from researchgym.hardware import HardwareError  # noqa: E402

TASK = "fineweb-lm"
REPO = "kjj0/fineweb10B-gpt2"
VOCAB = 50304
MAGIC = 20240520
TRAIN_TOKENS, VAL_TOKENS = 6_000, 8_192  # the val shard splits in half: 4,096 test, 4,096 validation
SHARED = Path(researchgym.__file__).parent / "tasks" / "builtin" / "_shared"
TINY = (
    "python baseline.py --layers 1 --heads 2 --width 64 --iterations 20 --batch-size 4 --seq-len 64 "
    "--warmdown 20 --val-tokens 2048"
)


# ----------------------------------------------------------------------------- the mirror
def shard(tokens: np.ndarray, *, magic: int = MAGIC, count: int | None = None) -> bytes:
    header = np.zeros(256, dtype=np.int32)
    header[:3] = (magic, 1, len(tokens) if count is None else count)
    return header.tobytes() + tokens.astype(np.uint16).tobytes()


def pattern_tokens(count: int, rng: np.random.Generator, pattern: np.ndarray) -> np.ndarray:
    """A 37-token cycle of distinct GPT-2 ids with 5% random tokens: learnable from bigrams.
    37 does not divide 1,024, so different windows hold different tokens at a position."""
    tokens = pattern[(np.arange(count) + rng.integers(37)) % 37].copy()
    noise = rng.random(count) < 0.05
    tokens[noise] = rng.integers(0, 50257, int(noise.sum()))
    return tokens


def write_mirror(mirror: Path, *, corrupt: str | None = None, seed: int = 0) -> Path:
    """<mirror>/kjj0/fineweb10B-gpt2/: train shards 1 and 2 and the val shard, as on the hub;
    `corrupt` names a file written with a bad header (bad magic for a train shard, a token count
    that does not match the size for the val shard)."""
    rng = np.random.default_rng(seed)
    pattern = rng.choice(50257, size=37, replace=False)
    repo = mirror / REPO
    repo.mkdir(parents=True, exist_ok=True)
    for name, count in (
        ("fineweb_train_000001.bin", TRAIN_TOKENS),
        ("fineweb_train_000002.bin", TRAIN_TOKENS),
        ("fineweb_val_000000.bin", VAL_TOKENS),
    ):
        tokens = pattern_tokens(count, rng, pattern)
        if name != corrupt:
            data = shard(tokens)
        elif "train" in name:
            data = shard(tokens, magic=12345)
        else:
            data = shard(tokens, count=count + 10)
        (repo / name).write_bytes(data)
    return repo


def tokens_of(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype=np.uint16, offset=1024)


# ----------------------------------------------------------------------------- models
class Uniform(torch.nn.Module):
    """Every token equally likely: the loss must be exactly ln(50304)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape[0], ids.shape[1], 50304)


class WrongVocabulary(torch.nn.Module):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape[0], ids.shape[1], 50257)


def peek(ids: torch.Tensor) -> torch.Tensor:
    """Logits that put the next token of the input 30 nats ahead of every other."""
    logits = torch.zeros(ids.shape[0], ids.shape[1], 50304)
    return logits.scatter_(2, torch.roll(ids, -1, dims=1).unsqueeze(2), 30.0)


class Peeking(torch.nn.Module):
    """Reads the next token from its input: a near-zero loss, if it were allowed."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return peek(ids)


class Colluding(torch.nn.Module):
    """Bets that the evaluator asks the same instance twice per batch, the check first: it answers
    odd calls honestly (uniform) and remembers their ids; in even calls it peeks from the first
    position whose token differs from the remembered ids, that is after the cut, where nothing
    is compared."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.seen = torch.zeros(0, 0, dtype=torch.long)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        honest = torch.zeros(ids.shape[0], ids.shape[1], 50304)
        if self.calls % 2 == 1 or self.seen.shape != ids.shape:
            self.seen = ids
            return honest
        moved = (self.seen != ids).long().cumsum(dim=1) > 0
        return torch.where(moved.unsqueeze(2), peek(ids), honest)


class Reading(torch.nn.Module):
    """Opens the hidden test tokens (readable by the evaluator of the test split)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = torch.from_file("data/answers/fineweb_test.bin", False, 1024, dtype=torch.uint8)
        return torch.zeros(ids.shape[0], ids.shape[1], 50304) + hidden.float().sum() * 0.0


def grab(count: int) -> torch.Tensor:
    return torch.from_file("data/answers/fineweb_test.bin", False, count, dtype=torch.uint8)


class ForkedReading(torch.nn.Module):
    """Reads the file in a function run by torch.jit.fork: a subgraph, not a block, of forward."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = torch.jit.wait(torch.jit.fork(grab, 1024))
        return torch.zeros(ids.shape[0], ids.shape[1], 50304) + hidden.float().sum() * 0.0


@torch.jit.script
class Grabber:
    def __init__(self, count: int) -> None:
        self.count = count

    def get(self) -> torch.Tensor:
        return grab(self.count)


class ClassReading(torch.nn.Module):
    """Reads the file in a method of a TorchScript class held as an attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.grabber = Grabber(1024)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape[0], ids.shape[1], 50304) + self.grabber.get().float().sum() * 0.0


class LoadTimeCode(torch.nn.Module):
    """Runs code inside torch.jit.load, through __setstate__."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = torch.zeros(1)

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, bool]:
        return (self.seen, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
        self.seen = state[0]
        self.training = state[1]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape[0], ids.shape[1], 50304) + self.seen


def save(module: torch.nn.Module, folder: Path) -> Path:
    path = folder / "model.pt"
    torch.jit.script(module).save(str(path))
    return path


def reference_loss(model_path: Path, shard_path: Path) -> float:
    """The metric, computed here independently: consecutive 1,024-token windows, every token
    after the first of each predicted from the ones before it."""
    tokens = torch.from_numpy(tokens_of(shard_path).astype(np.int64))
    model = torch.jit.load(str(model_path))
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(tokens), 1024):
            window = tokens[start : start + 1024]
            if len(window) >= 2:
                logits = model(window[None])[0, :-1]
                total += float(F.cross_entropy(logits, window[1:], reduction="sum"))
                count += len(window) - 1
    return total / count


# ----------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def task(hub_env):
    write_mirror(hub_env)
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    return spec


def data_folder(task) -> Path:
    return task.dataset_path(task.datasets[0])


def test_prepare_splits_the_val_shard_and_keeps_the_train_shards(task, hub_env):
    folder = data_folder(task)
    repo = hub_env / REPO
    assert sorted(p.name for p in (folder / "fineweb10B").iterdir()) == [
        "fineweb_train_000001.bin",
        "fineweb_train_000002.bin",
        "fineweb_validation.bin",
    ]
    for name in ("fineweb_train_000001.bin", "fineweb_train_000002.bin"):
        assert (folder / "fineweb10B" / name).read_bytes() == (repo / name).read_bytes()
    val = tokens_of(repo / "fineweb_val_000000.bin")
    for path, expected in (
        (folder / "answers" / "fineweb_test.bin", val[:4096]),
        (folder / "fineweb10B" / "fineweb_validation.bin", val[4096:]),
    ):
        header = np.fromfile(path, dtype=np.int32, count=3)
        assert header.tolist() == [MAGIC, 1, 4096] and path.stat().st_size == 1024 + 2 * 4096
        assert np.array_equal(tokens_of(path), expected)


@pytest.mark.parametrize(
    "corrupt, problem",
    [("fineweb_train_000002.bin", "bad header magic 12345"), ("fineweb_val_000000.bin", "the header says 8202 tokens")],
)
def test_a_bad_shard_header_fails_naming_the_file(hub_env, tmp_path, monkeypatch, corrupt, problem):
    write_mirror(tmp_path / "mirror", corrupt=corrupt)
    monkeypatch.setenv("RESEARCHGYM_HUB_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("RESEARCHGYM_CACHE", str(tmp_path / "cache"))
    spec = researchgym.load_task(TASK)
    with pytest.raises(DatasetError) as caught:
        spec.ensure_datasets()
    assert f"{corrupt}: {problem}" in str(caught.value)
    assert not spec.dataset_path(spec.datasets[0]).exists()


def test_the_test_tokens_are_hidden_and_a_missing_model_is_named(task):
    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step("ls data/fineweb10B data/answers; od -An -tu2 -N8 -j1024 data/answers/fineweb_test.bin")
    assert "fineweb_validation.bin" in listing and "fineweb_train_000001.bin" in listing
    assert "fineweb_test.bin: No such file" in listing  # the folder is masked: an empty stand-in
    observation, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "submission_not_found" and "model.pt" in observation


def test_the_evaluator_itself_reports_a_missing_model(task, tmp_path):
    for name in ("lm_scoring.py", "isolation.py", "agent_link.py"):
        shutil.copyfile(SHARED / name, tmp_path / name)
    shutil.copyfile(task.path("eval/evaluate.py"), tmp_path / "evaluate.py")
    (tmp_path / "data").symlink_to(data_folder(task))
    run = subprocess.run(
        [sys.executable, "evaluate.py", "--split", "validation"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert '"status": "submission_not_found"' in run.stdout and "model.pt is missing" in run.stdout


def test_the_baseline_trains_and_the_score_is_the_loss_on_the_split(task, tmp_path):
    env = researchgym.make(TASK)
    env.reset(seed=0)
    observation, *_ = env.step(TINY)
    assert "saved model.pt" in observation, observation
    model = tmp_path / "model.pt"
    shutil.copyfile(env.workspace / "model.pt", model)
    validated, _, _, _, info = env.step("validate")
    assert "Validation score: val_loss" in validated, validated
    validation = info["scores"][-1]["validation"]["value"]
    _, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "submitted", info["scores"]
    folder = data_folder(task)
    assert validation == pytest.approx(
        reference_loss(model, folder / "fineweb10B" / "fineweb_validation.bin"), abs=1e-4
    )
    assert info["final_score"] == pytest.approx(
        reference_loss(model, folder / "answers" / "fineweb_test.bin"), abs=1e-4
    )
    assert info["scores"][0]["test"]["value"] == pytest.approx(info["final_score"])  # the validated copy
    assert info["scores"][-1]["test"]["metrics"]["tokens"] == 4 * 1023
    assert math.isfinite(info["final_score"]) and info["final_score"] < math.log(VOCAB) - 0.5  # it learned
    # A fresh process without baseline.py loads the TorchScript file and runs any length up to 1024.
    probe = (
        "import torch; m = torch.jit.load('model.pt'); ids = torch.zeros(2, 1024, dtype=torch.long); "
        "print(tuple(m(ids).shape), tuple(m(ids[:1, :7]).shape))"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.stdout.split("\n")[0] == "(2, 1024, 50304) (1, 7, 50304)", run.stderr


def test_the_loss_is_computed_from_the_logits(task, tmp_path):
    save(Uniform(), tmp_path)
    score = evaluate(task, tmp_path, split="validation", seed=0)
    assert score.value == pytest.approx(math.log(VOCAB), abs=1e-5)
    assert score.metrics["tokens"] == 4 * 1023 and score.metrics["split"] == "validation"


@pytest.mark.parametrize(
    "module, message",
    [
        (WrongVocabulary(), "(batch, time, vocab) = (4, 1024, 50304), got (4, 1024, 50257)"),
        (Reading(), "uses aten::from_file, which is not allowed because it reads files"),
        (LoadTimeCode(), "defines __setstate__"),
        (Peeking(), "the model looks ahead: in window "),
    ],
    ids=["wrong-shape", "reads-files", "load-time-code", "peeks"],
)
def test_a_bad_model_is_rejected_with_a_clear_error(task, tmp_path, module, message):
    save(module, tmp_path)
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path, split="test", seed=7)  # test: the hidden tokens are readable here
    assert caught.value.status == "evaluation_error"
    assert message in str(caught.value)


@pytest.fixture(scope="module")
def scoring():
    """The evaluator's shared helper, imported here for checks the sandboxed runs cannot isolate."""
    spec = importlib.util.spec_from_file_location("lm_scoring", SHARED / "lm_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("module", [ForkedReading(), ClassReading()], ids=["forked", "class-method"])
def test_the_op_check_sees_code_outside_forward(scoring, tmp_path, module):
    path = save(module, tmp_path)
    assert "aten::from_file" in scoring.used_ops(torch.jit.load(str(path)))  # the graphs, without the text scan
    with pytest.raises(scoring.ScoringError, match="uses aten::from_file"):
        scoring.load_model(str(path), torch.device("cpu"))


def test_a_model_that_keeps_state_between_calls_is_caught(task, tmp_path, scoring):
    """Colluding bets on one instance answering the check and the scored run of a batch. The
    check's copy is a process of its own, run after the scored run: a model that changes its
    answers with what it saw before is caught where the two copies disagree."""
    path = save(Colluding(), tmp_path)
    tokens = torch.from_numpy(tokens_of(data_folder(task) / "fineweb10B" / "fineweb_validation.bin").astype(np.int64))
    cpu = torch.device("cpu")
    options = dict(context=1024, vocab=VOCAB, rows=2, device=cpu)  # 2 batches of 2 windows
    with pytest.raises(scoring.ScoringError, match="looks ahead"):
        with scoring.CheckCopy(str(path), cpu, VOCAB) as check:
            scoring.window_loss(scoring.load_model(str(path), cpu), check, tokens, rng=random.Random(0), **options)


def test_a_gpu_task_is_refused_without_a_gpu(task, monkeypatch):
    monkeypatch.delenv("RESEARCHGYM_ALLOW_NO_GPU")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(HardwareError) as caught:
        researchgym.make(TASK)
    assert "'fineweb-lm' needs 1 GPU(s)" in str(caught.value) and "shakespeare-char" in str(caught.value)
