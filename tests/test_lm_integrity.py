"""The language-model scorer against models that try to change what they are scored on (issue
26 items 1 and 2): writing into their input to rewrite the targets, and looking ahead under a
huge common offset that a relative tolerance would not see. Each attack must earn no better
than an honest model. Real TorchScript archives, loaded and vetted as in an evaluation."""

from __future__ import annotations

import importlib.util
import math
import random

import pytest

torch = pytest.importorskip("torch")

from researchgym.tasks.registry import BUILTIN_DIR  # noqa: E402

VOCAB, CONTEXT, ROWS = 16, 32, 4


def scorer():
    spec = importlib.util.spec_from_file_location("lm_scoring_integrity", BUILTIN_DIR / "_shared" / "lm_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LM = scorer()


def tokens() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, VOCAB, (12 * CONTEXT + 7,), generator=generator)


def score(module: torch.nn.Module, tmp_path, data: torch.Tensor | None = None) -> float:
    """Mean loss per token (nats), as the evaluators compute it."""
    path = str(tmp_path / "model.pt")
    torch.jit.script(module).save(path)
    model, check = LM.load_model(path, torch.device("cpu")), LM.load_model(path, torch.device("cpu"))
    data = tokens() if data is None else data
    total, counted = LM.window_loss(
        model, check, data, context=CONTEXT, vocab=VOCAB, rows=ROWS, rng=random.Random(1), device=torch.device("cpu")
    )
    return total / counted


UNIFORM = math.log(VOCAB)


class Uniform(torch.nn.Module):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape[0], ids.shape[1], 16)


class Current(torch.nn.Module):
    """Honest and causal: bets on the next token repeating the current one."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(ids, 16).float() * 2.0


# ----------------------------------------------------------------- writing into the input
class ZeroesItsInput(torch.nn.Module):
    """Zeroes the ids it was given, then predicts token 0 everywhere: a loss of 0 if the
    evaluator took its targets from that tensor afterwards."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids.zero_()
        return torch.nn.functional.one_hot(ids, 16).float() * 50.0


class ShiftsItsInput(torch.nn.Module):
    """Makes every target equal the token before it, then predicts exactly that."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        logits = torch.nn.functional.one_hot(ids, 16).float() * 50.0
        ids[:, 1:] = ids[:, :-1].clone()
        return logits


class FillsItsInput(torch.nn.Module):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids.fill_(3)
        return torch.nn.functional.one_hot(torch.full_like(ids, 3), 16).float() * 50.0


@pytest.mark.parametrize("attack", [ZeroesItsInput, ShiftsItsInput, FillsItsInput], ids=lambda a: a.__name__)
def test_a_model_that_writes_into_its_input_is_scored_on_the_true_text(tmp_path, attack):
    data = tokens()
    before = data.clone()
    loss = score(attack(), tmp_path, data)
    assert torch.equal(data, before)  # the evaluator's tokens are its own
    assert loss >= UNIFORM  # no better than knowing nothing (it bets everything on one token)


# --------------------------------------------------------------------- looking ahead
class PeeksUnderAnOffset(torch.nn.Module):
    """Adds a huge common offset to every logit and a small bonus for the true next token: a
    relative tolerance on raw logits leaves room for the bonus; softmax keeps it."""

    def __init__(self, offset: float, bonus: float) -> None:
        super().__init__()
        self.offset, self.bonus = offset, bonus

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        following = torch.roll(ids, -1, dims=1)
        return self.offset + self.bonus * torch.nn.functional.one_hot(following, 16).float()


@pytest.mark.parametrize(
    ("offset", "bonus", "why"),
    [
        (1e6, 30.0, "must stay within"),  # too large to be a real model's
        (1e30, 30.0, "must stay within"),
        (5e3, 30.0, "looks ahead"),  # within the bound: the log-probabilities give it away
        (5e3, 0.5, "looks ahead"),
        (-5e3, 5.0, "looks ahead"),
        (0.0, 30.0, "looks ahead"),
    ],
)
def test_a_model_that_looks_ahead_under_a_common_offset_is_refused(tmp_path, offset, bonus, why):
    with pytest.raises(LM.ScoringError, match=why):
        score(PeeksUnderAnOffset(offset, bonus), tmp_path)


def test_a_signal_below_the_tolerance_gains_less_than_the_tolerance(tmp_path):
    loss = score(PeeksUnderAnOffset(100.0, 5e-4), tmp_path)
    assert loss >= UNIFORM - LM.ATOL


@pytest.mark.parametrize("honest", [Uniform, Current], ids=lambda m: m.__name__)
def test_honest_models_are_scored_as_before(tmp_path, honest):
    loss = score(honest(), tmp_path)
    if honest is Uniform:
        assert loss == pytest.approx(UNIFORM, abs=1e-6)
    else:
        assert math.isfinite(loss) and loss > 0


def test_an_honest_model_with_a_large_common_offset_is_still_accepted(tmp_path):
    """The bound is generous: an offset real models never need, but a causal one, passes."""

    class Offset(torch.nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return 500.0 + torch.nn.functional.one_hot(ids, 16).float() * 2.0

    assert score(Offset(), tmp_path) == pytest.approx(score(Current(), tmp_path), abs=1e-3)


class ZeroesItsInput83(torch.nn.Module):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids.zero_()
        return torch.nn.functional.one_hot(ids, 83).float() * 50.0


def test_end_to_end_the_shakespeare_evaluator_scores_the_true_text(tmp_path):
    """The reported case: through the real evaluation protocol, a model that zeroes its input
    earned a test loss of 0.0. It must score worse than a uniform guess."""
    import researchgym
    from researchgym.evaluation import evaluate

    task = researchgym.load_task("shakespeare-char")
    task.ensure_datasets()
    torch.jit.script(ZeroesItsInput83()).save(str(tmp_path / "model.pt"))
    score = evaluate(task, tmp_path, split="test", seed=3)
    assert score.value > math.log(83)
