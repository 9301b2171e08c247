"""Scoring a TorchScript language model from its logits, for LM evaluators (FineWeb, Shakespeare).

The submission is a TorchScript module mapping token ids (batch, time) to logits (batch, time,
vocab), position t predicting token t+1. Everything that decides the score happens here, in
the evaluator: the loss is computed from the logits (the model never receives the targets), and
three checks keep a model from seeing what it predicts:

* **No file access.** TorchScript runs no Python, but `torch.from_file` is a TorchScript op and
  would let a model read the hidden test tokens the evaluator itself must be able to read. Every
  op of every method is listed after loading; `aten::from_file`, `aten::save`, any op outside
  the `aten`/`prim` namespaces (distributed, profiler, debug loaders...) and objects of C++
  classes (torch.classes) are refused.
* **No code at load time.** A module with `__setstate__` runs it inside torch.jit.load; such an
  archive is refused before loading (its code is plain text in the zip, which is also searched
  for calls of the forbidden ops).
* **No look-ahead.** Each batch is also run on a second copy of the model, loaded and run in a
  process of its own (CheckCopy), with every row's tokens after a secret random cut replaced by
  the same positions of another window of real text. The log-probabilities of the next tokens
  up to the cut must not change. The scored run comes first and the cuts are drawn after it, and
  the two copies share no memory: when both ran in this process, memory the check copy freed
  (which `torch.empty` hands out uninitialised) carried its input, and with it the cuts, to the
  scored copy, which then looked ahead only where the check does not compare. The cuts are
  stratified over each batch's rows, so late positions are checked in every batch. What is
  compared is what is scored, the log-probabilities of the true next tokens (and of the
  replacement's), with an absolute tolerance, so a common offset added to every logit changes
  nothing; and the logits' magnitude is bounded (LOGIT_BOUND).
* **Nothing the model gets is read afterwards.** The model receives copies of the token ids:
  the targets are fixed before it runs, and an in-place op on its input changes only its copy.

Shared by copying into the evaluation folder (`evaluation.files`), like isolation.py.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable

import torch
import torch.nn.functional as F

#: Ops a submitted model may not use, with why.
FORBIDDEN_OPS = {
    "aten::from_file": "it reads files",
    "aten::save": "it writes files",
}
ALLOWED_NAMESPACES = ("aten::", "prim::")
#: Tolerance of the look-ahead check, on log-probabilities (nats): a model whose predictions
#: move by less than this through future tokens gains less than about 1e-3 nats.
ATOL = 1e-3
#: The largest logit magnitude accepted. Real models stay within tens; far larger values only
#: leave room to hide a signal below float precision.
LOGIT_BOUND = 1e4


class ScoringError(Exception):
    """The submission cannot be scored; `status` is what the evaluator reports to researchgym."""

    def __init__(self, message: str, status: str = "evaluation_error") -> None:
        super().__init__(message)
        self.status = status


#: In the archive's TorchScript source (the canonical form torch.jit.save writes), calls of the
#: forbidden ops and of ops of other namespaces; a second net under the op list of the graphs.
_FORBIDDEN_CALL = re.compile(rb"\b(?:torch|ops\.aten)\.(from_file|save)\s*\(")
_OTHER_NAMESPACE = re.compile(rb"\bops\.(?!aten\.|prim\.)(\w+)\.(\w+)")


def _scan_code(path: str) -> None:
    """Refuse, before loading, an archive whose code defines __setstate__ (run by torch.jit.load)
    or calls a forbidden op."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if "/code/" not in f"/{info.filename}" or info.filename.endswith(".debug_pkl"):
                    continue
                code = archive.read(info)
                if b"__setstate__" in code:
                    raise ScoringError(f"{path} defines __setstate__ ({info.filename}), which would run while "
                                       "loading; save a plain module (torch.jit.script(model).save(...))")
                found = _FORBIDDEN_CALL.search(code)
                if found:
                    op = f"aten::{found.group(1).decode()}"
                    raise ScoringError(f"{path} uses {op}, which is not allowed because {FORBIDDEN_OPS[op]}")
                found = _OTHER_NAMESPACE.search(code)
                if found:
                    raise ScoringError(f"{path} uses the op {found.group(1).decode()}::{found.group(2).decode()}; "
                                       "only aten:: and prim:: ops are allowed")
    except zipfile.BadZipFile as exc:
        raise ScoringError(f"{path} is not a TorchScript archive (torch.jit.save writes a zip file): {exc}") from exc


def _graph_kinds(graph, kinds: set[str]) -> None:
    graph = graph.copy()
    torch._C._jit_pass_inline(graph)
    _block_kinds(graph.block(), kinds)


def _block_kinds(block, kinds: set[str]) -> None:
    for node in block.nodes():
        kinds.add(node.kind())
        for value in node.outputs():  # objects of C++ classes run code no op list shows
            kind = str(value.type())
            if kind.startswith("__torch__.torch.classes."):
                kinds.add(kind)
        for inner in node.blocks():
            _block_kinds(inner, kinds)
        for name in node.attributeNames():  # e.g. the body of torch.jit.fork
            if node.kindOf(name) == "g":
                _graph_kinds(node.g(name), kinds)
            elif node.kindOf(name) == "gs":
                for graph in node.gs(name):
                    _graph_kinds(graph, kinds)


def used_ops(module: torch.jit.ScriptModule) -> set[str]:
    """Every op kind in every method of the module and its submodules, calls inlined (forked
    functions too), and the C++ classes (torch.classes) of any object they use."""
    kinds: set[str] = set()
    for _, sub in module.named_modules():
        for name in sub._c._method_names():
            _graph_kinds(sub._c._get_method(name).graph, kinds)
    return kinds


def load_model(path: str, device: torch.device) -> torch.jit.ScriptModule:
    """Load and vet a submitted TorchScript model (see the module docstring)."""
    if not os.path.isfile(path):
        raise ScoringError(f"{path} is missing: save your model with torch.jit.script(model).save('{path}')",
                           status="submission_not_found")
    _scan_code(path)
    try:
        module = torch.jit.load(path, map_location=device)
    except Exception as exc:
        raise ScoringError(f"{path} is not a TorchScript module torch.jit.load can read: {exc}") from exc
    for name, sub in module.named_modules():
        if "__setstate__" in sub._c._method_names():
            raise ScoringError(f"{path}: module '{name or '<root>'}' defines __setstate__; save a plain module")
    try:
        kinds = used_ops(module)
    except Exception as exc:
        raise ScoringError(f"{path}: cannot inspect the TorchScript code: {exc}") from exc
    for kind in sorted(kinds):
        if kind in FORBIDDEN_OPS:
            raise ScoringError(f"{path} uses {kind}, which is not allowed because {FORBIDDEN_OPS[kind]}")
        if kind.startswith("__torch__.torch.classes."):
            raise ScoringError(f"{path} uses an object of the C++ class {kind.split('.', 3)[-1]}; only plain "
                               "tensors and aten:: and prim:: ops are allowed")
        if kind == "prim::CallFunction":  # left after inlining: code this check cannot see
            raise ScoringError(f"{path} calls a function whose code cannot be inspected")
        if not kind.startswith(ALLOWED_NAMESPACES):
            raise ScoringError(f"{path} uses the op {kind}; only aten:: and prim:: ops are allowed")
    module.eval()
    return module


def _logits(model: torch.jit.ScriptModule, ids: torch.Tensor, vocab: int) -> torch.Tensor:
    try:
        out = model(ids)
    except Exception as exc:
        raise ScoringError(f"the model failed on token ids of shape {tuple(ids.shape)}: {exc}") from exc
    expected = (*ids.shape, vocab)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ScoringError(f"the model must return logits of shape (batch, time, vocab) = {expected}, got {got}")
    if not out.is_floating_point():
        raise ScoringError(f"the model must return floating-point logits, got {out.dtype}")
    scored = out[:, :-1]  # the positions whose predictions count (NaN or inf there fail the loss check)
    if scored.numel():
        low, high = torch.aminmax(scored)
        largest = max(abs(float(low)), abs(float(high)))
        if math.isfinite(largest) and largest > LOGIT_BOUND:
            raise ScoringError(f"the model's logits reach {largest:.3g} in magnitude; they must stay within "
                               f"{LOGIT_BOUND:g} (real models stay within tens)")
    return out


def next_token_log_probs(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """log-softmax of `logits` (time, vocab), in float64, at the token ids `index` (time, k)."""
    return F.log_softmax(logits.double(), dim=-1).gather(-1, index)


def _first_difference(a: torch.Tensor, b: torch.Tensor) -> int:
    """The first position (row of `a` and `b`) whose log-probabilities differ by more than ATOL,
    or whose NaNs differ; -1 when none does."""
    if torch.equal(a, b):
        return -1
    gap = (a - b).abs()
    both_inf = torch.isinf(a) & torch.isinf(b) & (a == b)  # -inf for the same impossible token
    bad = ((gap > ATOL) & ~both_inf).any(dim=-1) | (a.isnan() != b.isnan()).any(dim=-1)
    return int(bad.nonzero()[0, 0]) if bad.any() else -1


class CheckCopy:
    """The look-ahead check's copy of the model, in a process of its own (this file, run with
    --check-copy): it gets the rows to check and the token ids whose log-probabilities to return,
    and returns those alone, so nothing else crosses between the copies. Its printed output goes
    to stderr: its stdout carries the replies. It loads the model while the first batch is
    scored; `answer` first reads whether it could."""

    def __init__(self, path: str, device: torch.device, vocab: int) -> None:
        # The same arithmetic as the scored run's: threads (summation order) and TF32 matmuls.
        settings = {"threads": torch.get_num_threads(), "tf32": torch.backends.cuda.matmul.allow_tf32,
                    "cudnn_tf32": torch.backends.cudnn.allow_tf32}
        command = [sys.executable, os.path.abspath(__file__), "--check-copy", path, str(device), str(vocab),
                   json.dumps(settings)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._loaded = False  # its first reply says whether it loaded the model (read when needed)
        self._asked: list[tuple[int, int, int]] = []

    def ask(self, ids: torch.Tensor, index: torch.Tensor) -> None:
        """Ask for the log-probabilities the logits of each row of `ids` (rows, time) give, at
        positions 0..time-2, to the ids in `index` (rows, time - 1, k); `answer` returns them."""
        rows, length = ids.shape
        k = index.shape[-1]
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(struct.pack("<iii", rows, length, k))
            self.process.stdin.write(ids.to("cpu", torch.int64).contiguous().numpy().tobytes())
            self.process.stdin.write(index.to("cpu", torch.int64).contiguous().numpy().tobytes())
            self.process.stdin.flush()
        except OSError as exc:  # it has ended: its last reply says why, if it wrote one
            self._check_loaded()
            raise ScoringError(f"the look-ahead check's copy of the model stopped: {exc}") from exc
        self._asked.append((rows, length, k))

    def answer(self) -> torch.Tensor:
        """The reply to the oldest question not answered yet: float64 (rows, time - 1, k)."""
        self._check_loaded()
        rows, length, k = self._asked.pop(0)
        data = self._reply()
        if len(data) != 8 * rows * (length - 1) * k:
            raise ScoringError("the look-ahead check's copy of the model sent a reply of the wrong size")
        return torch.frombuffer(bytearray(data), dtype=torch.float64).view(rows, length - 1, k)

    def log_probs(self, ids: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        self.ask(ids, index)
        return self.answer()

    def _check_loaded(self) -> None:
        if not self._loaded:
            self._reply()  # raises the ScoringError it could not load the model with
            self._loaded = True

    def _reply(self) -> bytes:
        assert self.process.stdout is not None
        head = self.process.stdout.read(9)
        if len(head) != 9:
            self.process.wait()
            raise ScoringError(f"the look-ahead check's copy of the model ended (exit code {self.process.returncode}); "
                               "see the output above")
        status, size = struct.unpack("<Bq", head)
        data = self.process.stdout.read(size)
        if status != 0:
            failure = json.loads(data)
            raise ScoringError(failure["message"], failure["status"])
        return data

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "CheckCopy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_check_copy(path: str, device_name: str, vocab: int, settings: dict) -> None:
    """The check copy's process: load the model, then answer CheckCopy.log_probs until stdin ends."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the model prints (prim::Print) must never reach the replies
    requests = sys.stdin.buffer

    def send(status: int, payload: bytes) -> None:
        replies.write(struct.pack("<Bq", status, len(payload)) + payload)
        replies.flush()

    def fail(exc: ScoringError) -> None:
        send(1, json.dumps({"message": str(exc), "status": exc.status}).encode())

    torch.set_num_threads(max(1, int(settings["threads"])))
    torch.backends.cuda.matmul.allow_tf32 = bool(settings["tf32"])
    torch.backends.cudnn.allow_tf32 = bool(settings["cudnn_tf32"])
    device = torch.device(device_name)
    try:
        model = load_model(path, device)
    except ScoringError as exc:
        fail(exc)
        return
    send(0, b"")
    while True:
        head = requests.read(12)
        if len(head) != 12:
            return
        rows, length, k = struct.unpack("<iii", head)
        ids = torch.frombuffer(bytearray(requests.read(8 * rows * length)), dtype=torch.int64).view(rows, length)
        index = torch.frombuffer(bytearray(requests.read(8 * rows * (length - 1) * k)), dtype=torch.int64)
        index = index.view(rows, length - 1, k).to(device)
        try:
            with torch.no_grad():
                logits = _logits(model, ids.to(device), vocab)
                out = torch.stack([next_token_log_probs(logits[r, :-1], index[r]) for r in range(rows)])
        except ScoringError as exc:
            fail(exc)
            continue
        send(0, out.cpu().contiguous().numpy().tobytes())


def _donor(windows: torch.Tensor, own: int, row: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Real text to put after a cut: another window of the split, picked at random (a window's
    own tokens reversed when the split has no other window)."""
    full = len(windows)
    others = full - 1 if own < full else full  # `own` == full: the short last window, not in `windows`
    if others < 1:
        return row.flip(0)
    index = rng.randrange(others)
    return windows[index + int(own < full and index >= own)]


def stratified_cuts(rows: int, length: int, rng: random.Random) -> list[int]:
    """One cut per row in [0, length - 2]: row i's falls in the i-th of `rows` equal strata,
    then the cuts are shuffled over the rows."""
    span = length - 1
    cuts = [min(span - 1, int((i + rng.random()) * span / rows)) for i in range(rows)]
    rng.shuffle(cuts)
    return cuts


def window_loss(
    model: torch.jit.ScriptModule,
    check: CheckCopy,
    tokens: torch.Tensor,
    *,
    context: int,
    vocab: int,
    rows: int,
    rng: random.Random,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[float, int]:
    """Summed next-token cross-entropy (nats) over `tokens` and the number of tokens scored.

    `tokens` (1-D, int64) is cut into consecutive windows of `context` tokens (the last one may
    be shorter); in each, every token after the first is predicted from the ones before it. The
    model gets a window at a time, `rows` windows per call; `check` is the copy of it in a
    process of its own that the look-ahead check runs.
    """
    total, scored = 0.0, 0
    full = len(tokens) // context
    windows = tokens[: full * context].view(full, context)
    batches = [(start, windows[start : start + rows]) for start in range(0, full, rows)]
    rest = len(tokens) - full * context
    if rest >= 2:
        batches.append((full, tokens[full * context :].view(1, rest)))
    def compare(first: int, cuts: list[int], ours: list[torch.Tensor], again: torch.Tensor) -> None:
        for r, cut in enumerate(cuts):
            position = _first_difference(ours[r], again[r, : cut + 1])
            if position >= 0:
                raise ScoringError(
                    f"the model looks ahead: in window {first + r}, its logits at position {position} changed "
                    f"when only tokens after position {cut} changed (the logits at position t may depend on "
                    "tokens 0..t only)")

    with torch.no_grad():
        for done, (first, x) in enumerate(batches):
            count, length = x.shape
            targets = x[:, 1:].to(device, copy=True)  # fixed before the model runs
            logits = _logits(model, x.to(device, copy=True), vocab)  # a copy: the evaluator's tokens stay its own
            for r in range(count):  # row by row: a whole batch's float32 copy would double the memory
                loss = float(F.cross_entropy(logits[r, :-1].float(), targets[r], reduction="sum"))
                if not math.isfinite(loss):
                    raise ScoringError("the model's logits give a NaN or infinite loss (NaN or +inf logits, "
                                       "or -inf for a token that occurs)")
                total += loss
            scored += count * (length - 1)
            # The cuts exist only now, after the scored run, and only here and in the check's process.
            cuts = stratified_cuts(count, length, rng)
            other = x.clone()
            for r, cut in enumerate(cuts):
                other[r, cut + 1 :] = _donor(windows, first + r, x[r], rng)[cut + 1 : length]
            index = torch.stack([x[:, 1:], other[:, 1:]], dim=-1)  # the true next token, and the replacement's
            ours = [next_token_log_probs(logits[r, : cut + 1], index[r, : cut + 1].to(device)).cpu()
                    for r, cut in enumerate(cuts)]
            del logits
            # One after the other: run side by side, the two copies only fought for the CPU cores.
            compare(first, cuts, ours, check.log_probs(other, index))
            if progress is not None:
                progress(done + 1, len(batches))
    return total, scored


if __name__ == "__main__" and sys.argv[1:2] == ["--check-copy"]:
    _serve_check_copy(sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5]))
