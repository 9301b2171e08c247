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
    cpu = torch.device("cpu")
    model = LM.load_model(path, cpu)
    data = tokens() if data is None else data
    with LM.CheckCopy(path, cpu, VOCAB) as check:
        total, counted = LM.window_loss(
            model, check, data, context=CONTEXT, vocab=VOCAB, rows=ROWS, rng=random.Random(1), device=cpu
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


# ------------------------------------------------ a channel between the two copies of the model
class MemoryChannel(torch.nn.Module):
    """The red team's attack on two copies in one process: every call leaves its input in memory
    it frees (torch.empty hands it out uninitialised), and looks there for another call's input.
    Found, and differing from its own after some position (the look-ahead check's cut), it reads
    the next token from its own input from there on, where the check does not compare; else it
    guesses uniformly. With both copies in the evaluator's process it scored about 1.44 nats
    here against 2.77 for a uniform guess, and was never caught."""

    def __init__(self):
        super().__init__()
        self.sizes = [600_000, 400_000, 250_000, 120_000, 60_000, 30_000, 17_000, 4_000, 1_000]
        self.magic = 0x5EC7E7C0DEC0FFEE
        self.magic2 = 0x0DDBA11C0FFEE123

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        bufs: list[torch.Tensor] = []
        for n in self.sizes:
            bufs.append(torch.empty([n], dtype=torch.long))
        B = ids.size(0)
        T = ids.size(1)
        L = B * T + 4
        logits = torch.zeros(B, T, 16)
        scored = False
        for buf in bufs:
            if scored:
                break
            N = buf.numel()
            hits = (buf == self.magic).nonzero().view(-1)
            for k in range(min(hits.numel(), 64)):
                h = int(hits[k])
                if h + L <= N and int(buf[h + 1]) == B and int(buf[h + 2]) == T and int(buf[h + L - 1]) == self.magic2:
                    other = buf[h + 3 : h + 3 + B * T].view(B, T)
                    diff = other != ids
                    if bool((~diff[:, 0]).all()) and bool(diff.any()):
                        pos = torch.arange(T).unsqueeze(0).expand(B, T)
                        first = torch.where(diff, pos, torch.full_like(pos, T)).min(dim=1).values
                        mask = pos >= first.unsqueeze(1)
                        nxt = torch.roll(ids, -1, 1)
                        cheat = torch.nn.functional.one_hot(nxt, 16).to(logits.dtype) * 30.0
                        logits = torch.where(mask.unsqueeze(-1), cheat, logits)
                        scored = True
                        break
        for buf in bufs:
            buf.fill_(0)
        if not scored:
            payload = torch.cat([torch.tensor([self.magic, B, T]), ids.reshape(-1), torch.tensor([self.magic2])])
            for buf in bufs:
                reps = (buf.numel() - 64) // L
                if reps > 0:
                    buf[64 : 64 + reps * L].view(reps, L).copy_(payload.unsqueeze(0).expand(reps, L))
        return logits


def test_the_check_copy_shares_no_memory_with_the_scored_copy(tmp_path):
    """The check copy runs in a process of its own, after the scored run: nothing it leaves in
    memory reaches the scored copy, which therefore never learns the cuts."""
    assert score(MemoryChannel(), tmp_path) == pytest.approx(UNIFORM, abs=1e-6)


class Chatty(torch.nn.Module):
    """Prints (TorchScript's print writes to the process's stdout, which once carried nothing)
    bytes shaped like a reply of the check copy: the replies travel on a descriptor of their own."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        print("\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
        return torch.zeros(ids.shape[0], ids.shape[1], 16)


def test_what_the_check_copy_prints_never_reaches_its_replies(tmp_path):
    assert score(Chatty(), tmp_path) == pytest.approx(UNIFORM, abs=1e-6)
