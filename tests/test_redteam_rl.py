"""Red-team tests of the RL tasks' evaluation: each attack is a submitted artefact (its
src/networks.py, a module it imports, or a checkpoint that runs code when unpickled) scored
through the real evaluation in bubblewrap sandboxes, and each must get no better than an honest
artefact: the honest score, or a failure with a named status and a clear message.

(a) the agent's code looks for the test seeds and the evaluator's files and finds nothing;
(b) forged result lines, on every output and every descriptor, never become the score;
(c) answers of the wrong size, NaN, infinity, a non-positive scale, or a frame claiming a huge
    length are an evaluation_error that says what was wrong;
(d) the test seeds are secret: derived from the evaluation's seed, different between seeds,
    never the validation seeds 0-4 or the former public test seeds 100-104, and not shown;
(e) a policy that hangs or leaves a process behind fails within the evaluator's deadlines.

The artefacts are the CPU variants with untrained networks (see test_rl_tasks.py), so each
evaluation takes seconds, not minutes.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import re
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("gymnax") is None:  # checked without importing JAX into this process
    pytest.skip("the rl extra is not installed", allow_module_level=True)

from test_rl_tasks import untrained_checkpoints  # noqa: E402

import researchgym  # noqa: E402
from researchgym.errors import EvaluationError  # noqa: E402
from researchgym.evaluation import evaluate  # noqa: E402
from researchgym.tasks.registry import BUILTIN_DIR  # noqa: E402

MAZE = "rl-meta-maze-cpu"
CAR = "rl-mountain-car-continuous-cpu"
#: What the host would hand the evaluator for the test split (a 63-bit secret).
SECRET_SEED = 6_917_529_027_641_081_857
FORGED = 1e9


def evaluator_module() -> Any:
    """The RL evaluator's module (for split_seeds and seeds_fingerprint), imported from its file;
    importing it runs nothing."""
    shared = str(BUILTIN_DIR / "_shared")
    if shared not in sys.path:
        sys.path.append(shared)
    spec = importlib.util.spec_from_file_location("rl_evaluate_for_tests", BUILTIN_DIR / "_rl" / "eval" / "evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RL = evaluator_module()


# ------------------------------------------------------------------------ artefacts
@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One untrained artefact per task, built once; each test works on a copy."""
    built = {}
    for task_id in (MAZE, CAR):
        folder = tmp_path_factory.mktemp(task_id)
        untrained_checkpoints(task_id, folder)
        built[task_id] = folder
    return built


def artefact(bases: dict[str, Path], task_id: str, tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    shutil.copytree(bases[task_id], workspace)
    return workspace


@pytest.fixture(scope="module")
def honest(bases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The honest validation score of the untrained maze artefact."""
    workspace = tmp_path_factory.mktemp("honest") / "workspace"
    shutil.copytree(bases[MAZE], workspace)
    return evaluate(researchgym.load_task(MAZE), workspace, split="validation", seed=0)


def patch_networks(workspace: Path, old: str, new: str) -> None:
    networks = workspace / "src" / "networks.py"
    text = networks.read_text()
    assert old in text, f"the starter networks.py no longer contains {old!r}"
    networks.write_text(text.replace(old, new))


def at_import(workspace: Path, code: str) -> None:
    """`code` runs when the policy server imports src/networks.py."""
    (workspace / "src" / "attack_import.py").write_text(code)
    patch_networks(workspace, "import flax.linen as nn", "import attack_import  # noqa: F401\nimport flax.linen as nn")


def at_step(workspace: Path, code: str) -> None:
    """`code` runs in the policy's process at the first step, inside the jitted policy (a host
    callback), once observations are not all zero (they are while the policy compiles at load)."""
    module = (
        "import numpy as _np\n\n\ndef at_step(obs):\n    if _np.any(_np.asarray(obs)):\n"
        + textwrap.indent(code, " " * 8)
        + "\n    return _np.float32(0)\n"
    )
    (workspace / "src" / "attack_step.py").write_text(module)
    patch_networks(workspace, "import flax.linen as nn", "from attack_step import at_step\nimport flax.linen as nn")
    patch_networks(
        workspace,
        "return value, logits",
        "return value, logits + jax.pure_callback(at_step, jax.ShapeDtypeStruct((), jnp.float32), obs)",
    )


class _RunsCode:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return exec, (self.code, {})


def at_unpickle(workspace: Path, code: str) -> None:
    """`code` runs when the policy server unpickles the first checkpoint."""
    with open(workspace / "checkpoints" / "config-42-0.pkl", "wb") as handle:
        pickle.dump(_RunsCode(code), handle)


def with_deadlines(task_id: str, load_s: float, step_s: float) -> Any:
    task = researchgym.load_task(task_id)
    task.evaluation.command += f" --load-timeout {load_s:g} --step-timeout {step_s:g}"
    return task


def failure(task: Any, workspace: Path, split: str = "validation", seed: int = 0) -> EvaluationError:
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, workspace, split=split, seed=seed)
    return caught.value


# Finds the descriptors of the link's output (write-only pipes other than stdout and stderr,
# which the server sent to stderr).
LINK_FDS = """
import fcntl, os
def link_fds():
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            flags = fcntl.fcntl(int(name), fcntl.F_GETFL)
        except OSError:
            continue
        if int(name) > 2 and target.startswith("pipe:") and flags & os.O_ACCMODE == os.O_WRONLY:
            found.append(int(name))
    return found
"""


# ------------------------------------------------------------------------ (a) nothing secret to find
SEARCH = r"""
import json, os, stat, sys
MASK = {mask}
NEEDLES = [str(value ^ MASK) for value in {masked}]  # the secret seed, the test seeds, a planted control
PYTHON = tuple(sorted({{sys.prefix, sys.base_prefix, "/usr", "/root/.pyenv", "/opt/researchgym"}}))
EVALUATOR_NAMES = {{".researchgym-secrets.json", "evaluate.py", "isolation.py", "result.json"}}
EVALUATOR_WORDS = ("take_secrets", "RESEARCHGYM_SECRETS_FILE", "split_seeds", "seeds_fingerprint")
found, searched = [], 0


def note(what):
    if len(found) < 40 and what not in found:
        found.append(what)


def secret_in(text):
    return [needle for needle in NEEDLES if needle in text]


for name, value in os.environ.items():
    if name.startswith("RESEARCHGYM") or secret_in(value):
        note("environment variable " + name)
guesses = ["/run/researchgym-result", "/run/researchgym-result/result.json", "/home/agent/.researchgym-secrets.json",
           "/home/agent/workspace/.researchgym-secrets.json", "/home/agent/workspace/evaluate.py",
           "/home/agent/workspace/isolation.py", {builtin!r} + "/_rl/eval/evaluate.py", {builtin!r}]
for pid in [entry for entry in os.listdir("/proc") if entry.isdigit()]:
    for part in ("cmdline", "environ"):
        try:
            with open(f"/proc/{{pid}}/{{part}}", "rb") as handle:
                data = handle.read().decode("latin-1")
        except OSError:
            continue
        if secret_in(data) or "RESEARCHGYM_SECRETS" in data or "RESEARCHGYM_RESULT" in data:
            note(f"/proc/{{pid}}/{{part}}")
        for word in data.split("\0") if part == "cmdline" else []:
            if word.startswith("/"):  # e.g. the host path of the artefact, from bwrap's command line
                top = os.path.dirname(word.rstrip("/"))
                guesses += [top + "/evaluator", top + "/result", top + "/evaluator/.researchgym-secrets.json",
                            top + "/evaluator/evaluate.py", word + "/.researchgym-secrets.json", word + "/evaluate.py"]
for guess in guesses:
    if os.path.lexists(guess):
        note("exists: " + guess)
for top, folders, names in os.walk("/"):
    if top == "/":
        folders[:] = [f for f in folders if f not in ("proc", "sys", "dev")]
    in_python = top.startswith(PYTHON)
    for name in names:
        path = os.path.join(top, name)
        searched += 1
        if name == ".researchgym-secrets.json" or (name in EVALUATOR_NAMES and not in_python):
            note("file: " + path)
        if in_python:
            continue
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > 1 << 20:
                continue
            with open(path, "rb") as handle:
                text = handle.read().decode("latin-1")
        except OSError:
            continue
        if secret_in(text):
            note(f"{{path}} holds {{len(secret_in(text))}} secret(s)")
        if any(word in text for word in EVALUATOR_WORDS) and "EVALUATOR_WORDS" not in text:
            note(f"{{path}} looks like the evaluator")
raise RuntimeError(f"searched {{searched}} files; found: {{json.dumps(found)}}")
"""
PLANTED = 4_812_062_953_117


def search_code() -> str:
    seeds = RL.split_seeds("test", SECRET_SEED)
    assert all(len(str(seed)) >= 7 for seed in seeds), "pick a secret whose test seeds are not short numbers"
    mask = 0x5A5A_5A5A_5A5A_5A5A
    masked = [value ^ mask for value in (SECRET_SEED, *seeds, PLANTED)]
    return SEARCH.format(mask=mask, masked=masked, builtin=str(BUILTIN_DIR))


@pytest.mark.parametrize("where", ["import", "unpickle", "step"])
def test_the_agents_code_finds_no_test_seed_and_no_evaluator_file(bases, tmp_path, where):
    workspace = artefact(bases, MAZE, tmp_path)
    (workspace / "src" / "planted.txt").write_text(f"a control the search must find: {PLANTED}\n")
    {"import": at_import, "unpickle": at_unpickle, "step": at_step}[where](workspace, search_code())
    error = failure(researchgym.load_task(MAZE), workspace, split="test", seed=SECRET_SEED)
    assert error.status == "evaluation_error"
    report = re.search(r"searched (\d+) files; found: (\[.*\])", str(error) + (error.detail or ""))
    assert report, str(error)
    assert int(report.group(1)) > 1000  # it walked the sandbox's whole filesystem
    # Only the planted control: no seed, no secrets file, no evaluator file, no result channel.
    assert json.loads(report.group(2)) == ["/home/agent/workspace/src/planted.txt holds 1 secret(s)"]


# ------------------------------------------------------------------------ (b) forged results
FORGE = (  # a code template with braces of its own
    """
import json, os, sys
line = json.dumps({"Reward Mean": %r, "Reward Std": 0.0, "episodes": 6400, "split": "validation",
                   "token": "0" * 32})
print(line, flush=True)
print(line, file=sys.stderr, flush=True)
for fd in (1, 2):
    os.write(fd, ("\\n" + line + "\\n").encode())
""".replace("%r", repr(FORGED))
)

EVERY_FD = (
    FORGE
    + """
data = ("\\n" + line + "\\n").encode()
for fd in range(1024):  # the link's output too: the protocol breaks
    try:
        os.write(fd, data)
    except OSError:
        pass
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for fd in os.listdir(f"/proc/{pid}/fd") if os.access(f"/proc/{pid}/fd", os.R_OK) else []:
            try:
                with open(f"/proc/{pid}/fd/{fd}", "w") as handle:
                    handle.write("\\n" + line + "\\n")
            except OSError:
                pass
"""
)

CHANNEL = (
    FORGE
    + """
# The result channel: where the evaluator's sandbox has it, its variable, guesses from the host
# paths on bwrap's command line.
targets = ["/run/researchgym-result/result.json", os.environ.get("RESEARCHGYM_RESULT_FILE") or "/nonexistent"]
try:
    words = open("/proc/1/cmdline", "rb").read().decode().split("\\0")
except OSError:
    words = []
targets += [os.path.dirname(word.rstrip("/")) + "/result/result.json" for word in words if word.startswith("/")]
for target in targets:
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(line)
    except OSError:
        pass
"""
)


@pytest.mark.parametrize("attack", ["print at import", "print at each step", "result channel"])
def test_forged_result_lines_do_not_change_the_score(bases, honest, tmp_path, attack):
    workspace = artefact(bases, MAZE, tmp_path)
    if attack == "print at each step":
        at_step(workspace, FORGE)
    else:
        at_import(workspace, CHANNEL if attack == "result channel" else FORGE)
    cheated = evaluate(researchgym.load_task(MAZE), workspace, split="validation", seed=0)
    assert cheated.metrics == honest.metrics and cheated.value == honest.value < 100
    assert str(FORGED) in cheated.output_tail  # the forged line was printed, and ignored


def test_writing_on_every_descriptor_breaks_the_protocol_not_the_score(bases, honest, tmp_path):
    workspace = artefact(bases, MAZE, tmp_path)
    at_import(workspace, EVERY_FD)
    try:
        cheated = evaluate(researchgym.load_task(MAZE), workspace, split="validation", seed=0)
    except EvaluationError as error:
        assert error.status == "evaluation_error", error
        assert "the policy server failed while asked to load checkpoints/config-42-0.pkl" in str(error)
    else:
        assert cheated.metrics == honest.metrics


# ------------------------------------------------------------------------ (c) malformed answers
HUGE_FRAME = (
    LINK_FDS
    + """
for fd in link_fds():
    os.write(fd, (0xFFFFFFF0).to_bytes(4, "big") + b"A")
"""
)

SHORT_FRAME = (
    LINK_FDS
    + """
for fd in link_fds():
    os.write(fd, (4).to_bytes(4, "big") + b"Aabc")
"""
)


@pytest.mark.parametrize(
    "task_id, break_it, message",
    [
        (
            MAZE,
            ("return value, logits", "return value, jnp.concatenate([logits, logits[:, :1]], axis=-1)"),
            "the agent's code sent 128,001 bytes; at most 102,401 are accepted here (expected logits with 4 columns",
        ),
        (
            MAZE,
            ("return value, logits", "return value, logits[:, :3]"),
            "the policy answered 19200 numbers (76800 bytes) for 6400 observations; expected logits with 4 columns",
        ),
        (
            MAZE,
            ("return value, logits", "return value, logits * jnp.nan"),
            "the policy output contains NaN or infinity",
        ),
        (
            MAZE,
            ("return value, logits", "return value, logits.at[3, 1].set(jnp.inf)"),
            "the policy output contains NaN or infinity",
        ),
        (
            CAR,
            ("jax.nn.softplus(raw_scale) + self.min_std", "-(jax.nn.softplus(raw_scale) + self.min_std)"),
            "the policy's scale must be positive",
        ),
        (CAR, ("jax.nn.softplus(raw_scale) + self.min_std", "0.0 * raw_scale"), "the policy's scale must be positive"),
        (
            CAR,
            ("jax.nn.softplus(raw_scale) + self.min_std", "jnp.ones((mean.shape[0], 2))"),
            "expected (mean, scale) with 1 columns each",
        ),
    ],
    ids=["extra column", "missing column", "nan", "inf", "negative scale", "zero scale", "scale too wide"],
)
def test_a_malformed_answer_is_an_evaluation_error(bases, tmp_path, task_id, break_it, message):
    workspace = artefact(bases, task_id, tmp_path)
    patch_networks(workspace, *break_it)
    error = failure(researchgym.load_task(task_id), workspace)
    assert error.status == "evaluation_error" and message in str(error), error


@pytest.mark.parametrize(
    "attack, message",
    [
        ("huge frame at load", "the agent's code sent 4,294,967,280 bytes; at most 20,001 are accepted here"),
        ("huge frame at a step", "the agent's code sent 4,294,967,280 bytes; at most 102,401 are accepted here"),
        ("short frame at a step", "the policy answered 0.75 numbers (3 bytes) for 6400 observations"),
    ],
)
def test_a_forged_frame_is_an_evaluation_error(bases, tmp_path, attack, message):
    workspace = artefact(bases, MAZE, tmp_path)
    (at_import if attack.endswith("load") else at_step)(workspace, SHORT_FRAME if "short" in attack else HUGE_FRAME)
    error = failure(researchgym.load_task(MAZE), workspace)
    assert error.status == "evaluation_error" and message in str(error), error


# ------------------------------------------------------------------------ (d) secret test seeds
def test_the_test_seeds_come_from_the_secret_seed_alone():
    public = {0, 1, 2, 3, 4, 100, 101, 102, 103, 104}
    assert RL.split_seeds("validation", SECRET_SEED) == [0, 1, 2, 3, 4]  # MLGym's, for the baselines
    drawn = set()
    for secret in [0, 1, 2, 100, SECRET_SEED, 2**63 - 1, *range(1000, 1200)]:
        seeds = RL.split_seeds("test", secret)
        assert seeds == RL.split_seeds("test", secret)  # a seed always gives the same episodes
        assert len(set(seeds)) == 5 and not public & set(seeds)
        assert all(isinstance(seed, int) and 0 <= seed < 2**31 for seed in seeds)
        drawn.add(tuple(seeds))
    assert len(drawn) == 206
    assert RL.split_seeds("test", None) != RL.split_seeds("test", None)  # by hand: fresh each time
    assert not hasattr(RL, "SEEDS")  # no public list of test seeds left
    source = (BUILTIN_DIR / "_rl" / "eval" / "evaluate.py").read_text()
    assert "100, 101" not in source


def test_two_evaluations_of_the_test_split_meet_different_secret_episodes(bases, honest, tmp_path):
    workspace = artefact(bases, MAZE, tmp_path)
    task = researchgym.load_task(MAZE)
    first = evaluate(task, workspace, split="test", seed=SECRET_SEED)
    second = evaluate(task, workspace, split="test", seed=SECRET_SEED + 1)
    fingerprint = RL.seeds_fingerprint
    assert honest.metrics["seeds_fingerprint"] == fingerprint([0, 1, 2, 3, 4])
    for score, seed in ((first, SECRET_SEED), (second, SECRET_SEED + 1)):
        assert score.metrics["split"] == "test" and score.metrics["episodes"] == 6400
        assert score.metrics["seeds_fingerprint"] == fingerprint(RL.split_seeds("test", seed))
        assert score.metrics["seeds_fingerprint"] not in (
            fingerprint([0, 1, 2, 3, 4]),
            fingerprint([100, 101, 102, 103, 104]),
        )
    assert first.metrics["seeds_fingerprint"] != second.metrics["seeds_fingerprint"]
    assert first.metrics["Reward Mean"] != second.metrics["Reward Mean"]
    # Nothing the agent sees on validation names a test seed or the secret.
    shown = json.dumps(honest.metrics) + honest.output_tail
    for secret in (SECRET_SEED, *RL.split_seeds("test", SECRET_SEED)):
        assert str(secret) not in shown


# ------------------------------------------------------------------------ (e) hangs and orphans
HANG = "import time\ntime.sleep(3600)\n"
ORPHAN = """
import os, time
if os.fork() == 0:  # a child keeps the link open and never answers; the server itself exits
    time.sleep(3600)
os._exit(0)
"""
STOP = "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n"


@pytest.mark.parametrize(
    "where, code, message",
    [
        ("import", HANG, "the policy did not load checkpoints/config-42-0.pkl within 8s"),
        ("unpickle", HANG, "the policy did not load checkpoints/config-42-0.pkl within 8s"),
        ("import", ORPHAN, "the policy did not load checkpoints/config-42-0.pkl within 8s"),
        ("step", HANG, "the policy did not answer a batch of observations within 4s"),
        ("step", STOP, "the policy did not answer a batch of observations within 4s"),
        (
            "import",
            "import os\nos._exit(3)\n",
            "the agent's code exited before it could load checkpoints/config-42-0.pkl",
        ),
    ],
    ids=[
        "hang at import",
        "hang at unpickle",
        "orphan holding the link",
        "hang at a step",
        "stopped at a step",
        "exit at import",
    ],
)
def test_a_policy_that_hangs_or_dies_fails_within_the_deadlines(bases, tmp_path, where, code, message):
    workspace = artefact(bases, MAZE, tmp_path)
    {"import": at_import, "unpickle": at_unpickle, "step": at_step}[where](workspace, code)
    started = time.monotonic()
    error = failure(with_deadlines(MAZE, 8, 4), workspace)
    assert error.status == "evaluation_error" and message in str(error), error
    assert time.monotonic() - started < 120  # far below the evaluation's own 900 s limit


# --------------------------------------------------------------- five trainings, not one
def test_two_identical_checkpoints_are_refused(bases, tmp_path):
    workspace = artefact(bases, MAZE, tmp_path)
    shutil.copyfile(workspace / "checkpoints" / "config-42-0.pkl", workspace / "checkpoints" / "config-42-3.pkl")
    with pytest.raises(EvaluationError, match="config-42-0.pkl and checkpoints/config-42-3.pkl are the same file"):
        evaluate(researchgym.load_task(MAZE), workspace, split="validation", seed=0)


def test_the_same_parameters_in_another_file_are_refused_by_how_they_act(bases, tmp_path):
    """Different bytes (an extra key), the same network: the answers give it away."""
    workspace = artefact(bases, MAZE, tmp_path)
    with open(workspace / "checkpoints" / "config-42-0.pkl", "rb") as handle:
        data = pickle.load(handle)
    with open(workspace / "checkpoints" / "config-42-2.pkl", "wb") as handle:
        pickle.dump({**data, "note": "another file"}, handle)
    with pytest.raises(EvaluationError, match="act identically on the same observations"):
        evaluate(researchgym.load_task(MAZE), workspace, split="validation", seed=0)


def test_a_network_that_ignores_its_checkpoint_is_refused(bases, tmp_path):
    workspace = artefact(bases, MAZE, tmp_path)
    patch_networks(workspace, "return value, logits", "return value, logits * 0.0 + jnp.arange(logits.shape[-1])")
    with pytest.raises(EvaluationError, match="act identically on the same observations"):
        evaluate(researchgym.load_task(MAZE), workspace, split="validation", seed=0)


# ------------------------------------------------------------------ memory, and sharing it
REMEMBERS = """
import numpy as _np
CALLS = [0]


def remembered(obs):
    # Grows with every batch this process answers, for all five checkpoints together: a policy
    # whose answer depends on what it answered before (memory) and on the other checkpoints
    # (they share this process), as the red team's MetaMaze policy did to find the goals again.
    CALLS[0] += 1
    bias = _np.zeros((obs.shape[0], 4), _np.float32)
    bias[:, CALLS[0] % 4] = 5.0
    return bias
"""


def test_a_policy_with_memory_or_shared_state_is_refused(bases, tmp_path):
    """A policy must answer each observation as a function of it and its checkpoint alone (the
    task: "no memory between steps"). A fresh copy of the artefact, in a sandbox of its own,
    answers a secret sample of the questions again once the rollout is over; answers that
    changed with what the policy saw before (or what another checkpoint saw) are refused. The
    red team's policy that remembered MetaMaze's goals scored 126 against a baseline of 28."""
    workspace = artefact(bases, MAZE, tmp_path)
    (workspace / "src" / "attack_memory.py").write_text(REMEMBERS)
    at_top = "from attack_memory import remembered\nimport flax.linen as nn"
    patch_networks(workspace, "import flax.linen as nn", at_top)
    patch_networks(
        workspace,
        "return value, logits",
        "return value, logits + jax.pure_callback(remembered, jax.ShapeDtypeStruct(logits.shape, jnp.float32), obs)",
    )
    error = failure(researchgym.load_task(MAZE), workspace)
    assert error.status == "evaluation_error"
    assert "a fresh copy of it" in str(error) and "no memory between steps" in str(error)


def test_an_honest_policy_answers_its_witness_alike(honest):
    """The same untrained artefact the other tests start from passes the witness's questions."""
    assert honest.metrics["episodes"] == 5 * 5 * 256
