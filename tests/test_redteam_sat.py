"""Red team of the 3-SAT task's evaluation: the solver runs in the evaluator, the heuristic in a
sandbox of its own behind heuristic_server.py (under cpu_meter.py, which holds the link and
measures the CPU time used there), and the test set is drawn from the evaluation's secret seed.
Each attack is played through the real evaluation (two bubblewrap sandboxes) and must do no
better than an honest heuristic: it fails with a named status, or it scores what its decisions
cost, in CPU time, wherever in its sandbox that CPU time was spent.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

import researchgym
from researchgym.datasets import cache_root
from researchgym.errors import EvaluationError
from researchgym.evaluation import Score, evaluate
from researchgym.tasks.loader import load_task_file
from researchgym.tasks.registry import BUILTIN_DIR

#: Every test here waits out real deadlines (instance limits, stalls): long, so `slow`.
pytestmark = pytest.mark.slow

TASK_ID = "3SATTime"
TASK_DIR = BUILTIN_DIR / "sat_time"
STARTER = (TASK_DIR / "starter" / "heuristic.py").read_text()
#: The starter heuristic's decisions on the public validation set (test_sat_time.py checks it).
VALIDATION_DECISIONS = 32_085
HONEST_ROUND_TRIPS = 34


@pytest.fixture(scope="module")
def task():
    spec = researchgym.load_task(TASK_ID)
    spec.ensure_datasets()
    return spec


def module(name: str, folder: Path = TASK_DIR / "eval"):
    spec = importlib.util.spec_from_file_location(f"redteam_sat_{name}", folder / f"{name}.py")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def run(task, tmp_path: Path, source: str, split: str = "validation", seed: int = 7) -> Score | EvaluationError:
    """Score `source` as heuristic.py; the Score, or the EvaluationError it failed with."""
    workspace = tmp_path / f"ws-{time.monotonic_ns()}"
    workspace.mkdir()
    (workspace / "heuristic.py").write_text(source)
    try:
        return evaluate(task, workspace, split=split, seed=seed, sandbox="bwrap")
    except EvaluationError as exc:
        return exc


def failure(outcome) -> EvaluationError:
    assert isinstance(outcome, EvaluationError), f"the attack was scored: {getattr(outcome, 'metrics', outcome)}"
    return outcome


def honest_floor(task) -> float:
    """A lower bound on an honest validation Time here: half the CPU time the solver and the
    starter heuristic take in this process (CPU time, like Time: the machine's load hardly
    changes either)."""
    solver, heuristic = module("solver"), module("heuristic", TASK_DIR / "starter")
    rows = json.loads((task.dataset_path(task.datasets[0]) / "validation.json").read_text())
    started = time.process_time()
    for row in rows:
        solver.DPLL(row["formula"], heuristic.heuristic_fn).solve()
    return 0.5 * (time.process_time() - started)


def assert_honest_score(outcome, floor: float) -> None:
    assert isinstance(outcome, Score), f"{outcome}: {getattr(outcome, 'detail', '')[-2000:]}"
    metrics = outcome.metrics
    assert metrics["Correct"] == 6000 and metrics["Incorrect"] == 0
    assert metrics["Decisions"] == VALIDATION_DECISIONS and metrics["RoundTrips"] == HONEST_ROUND_TRIPS
    assert outcome.value == metrics["Time"] >= floor
    assert metrics["Time"] == pytest.approx(metrics["SolverCPU"] + metrics["HeuristicCPU"], abs=0.002)


# ----------------------------------------------------------------------------- (a) nothing to find
SNOOP = r"""
import os, sys
FOUND = []
WALKED = [0]
INTERESTING = {"test.json", "validation.json", "instances.py", "evaluate.py", "isolation.py", "prepare.py",
               ".researchgym-secrets.json", "result.json"}
GUESSES = GUESSED_PATHS


def look_at_file(path):
    WALKED[0] += 1
    name = os.path.basename(path)
    if name in INTERESTING:
        FOUND.append(path)
    elif name.endswith(".json"):
        try:
            with open(path, "rb") as handle:
                head = handle.read(1 << 20)
        except OSError:
            return
        if b'"is_sat"' in head or b'"formula"' in head:
            FOUND.append(path)


def walk(top, depth, skip=()):
    if os.path.isfile(top):
        look_at_file(top)
        return
    for root, folders, files in os.walk(top):
        if root.count("/") - top.count("/") >= depth:
            folders[:] = []
        folders[:] = [f for f in folders if os.path.join(root, f) not in skip]
        for name in files:
            look_at_file(os.path.join(root, name))


def snoop(full):
    candidates = list(GUESSES)
    try:  # the sandbox's bwrap command line names the host folders it binds
        candidates += [a.decode() for a in open("/proc/1/cmdline", "rb").read().split(b"\0") if a.startswith(b"/")]
    except OSError:
        pass
    skip = {"/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix, os.path.realpath(sys.prefix),
            os.path.realpath(sys.base_prefix)}
    for path in candidates:
        if path in skip or any(path.startswith(s + "/") for s in skip) or not os.path.exists(path):
            continue
        walk(path, 4)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"evaluate.py" in open(f"/proc/{pid}/cmdline", "rb").read():
                    FOUND.append(f"process {pid}")
                if b"RESEARCHGYM_" in open(f"/proc/{pid}/environ", "rb").read():
                    FOUND.append(f"environment of {pid}")
            except OSError:
                pass
    if full:
        walk("/", 64, skip)
    FOUND.extend(k for k in os.environ if k.startswith("RESEARCHGYM_"))
    return sorted(set(FOUND))
"""


def snoop_source(task, when: str) -> str:
    guesses = [
        str(TASK_DIR),
        str(TASK_DIR / "eval" / "evaluate.py"),
        str(TASK_DIR / "eval" / "instances.py"),
        str(TASK_DIR / "prepare.py"),
        str(task.dataset_path(task.datasets[0])),
        str(cache_root() / "datasets" / TASK_ID),
        str(BUILTIN_DIR),
        "/home/agent/workspace/data",
        "/home/agent/workspace/data/answers",
        "/home/agent/workspace/data/answers/test.json",
        "/home/agent/workspace/data/validation.json",
        "data",
        "../data",
        "/run/researchgym-result",
        "/tmp",
        "/home/agent",
        "/root",
    ]
    source = SNOOP.replace("GUESSED_PATHS", repr(guesses))
    if when == "import":
        return source + "raise RuntimeError(f'FOUND {snoop(True)} after {WALKED[0]} files')\n"
    return source + (
        "def heuristic_fn(clauses, assignments, *rest):\n    raise RuntimeError(f'FOUND {snoop(False)}')\n"
    )


@pytest.mark.parametrize("split", ["validation", "test"])
@pytest.mark.parametrize("when", ["import", "first call"])
def test_the_heuristic_finds_no_labels_instances_or_evaluator(task, tmp_path, split, when):
    """From its sandbox the heuristic tries the task folder's host path (also as read from
    /proc/1/cmdline), the dataset's cache, data/answers, the evaluator's result folder, the
    other processes, and walks the whole filesystem for labels and instance files: nothing."""
    source = snoop_source(task, when)
    error = failure(run(task, tmp_path, source, split=split, seed=4242))
    assert error.status == "evaluation_format_error"
    assert "FOUND []" in str(error), f"{error}\n{error.detail[-3000:]}"
    assert ("could not import heuristic_fn" if when == "import" else f"{split} instance 1:") in str(error)
    if when == "import":
        assert int(str(error).rsplit(" after ", 1)[1].split()[0]) > 10  # it did walk what it could see
    # The same search run here, outside any sandbox, finds the task's files: it would have seen them.
    scope: dict = {}
    exec(SNOOP.replace("GUESSED_PATHS", repr([str(TASK_DIR), str(task.dataset_path(task.datasets[0]))])), scope)
    found = scope["snoop"](False)
    assert str(TASK_DIR / "eval" / "evaluate.py") in found and str(TASK_DIR / "eval" / "instances.py") in found
    assert str(task.dataset_path(task.datasets[0]) / "validation.json") in found


# ----------------------------------------------------------------------------- (b) tampering
PATCHES = {
    "the solver module": """
import solver
solver.DPLL.solve = lambda self: True
solver.DPLL.search = None
solver.DPLL.check_choice = lambda self, variable, value: (variable, value)
solver.normalize = lambda answer: answer
""",
    "sys.modules": """
import sys, types
fake = types.ModuleType("solver")
fake.DPLL = type("DPLL", (), {"solve": lambda self: True, "num_decisions": 0})
sys.modules["solver"] = fake
sys.modules["agent_link"] = fake
sys.modules["evaluate"] = fake
""",
    "the server": """
import __main__, json
__main__.FLUSH_S = 3600.0           # answer each round at once, never during it
__main__.encode = lambda result: [int(result[0]), bool(result[1])]
__main__.Outbox.flush = (lambda flush: lambda self: flush(self))(__main__.Outbox.flush)
""",
    "the clocks": """
import os, resource, time
time.process_time = time.thread_time = time.perf_counter = time.monotonic = time.time = lambda: 0.0
time.process_time_ns = time.thread_time_ns = time.perf_counter_ns = time.monotonic_ns = lambda: 0
os.times = lambda: os.times_result((0.0, 0.0, 0.0, 0.0, 0.0))
resource.getrusage = lambda who: resource.struct_rusage((0,) * 16)
""",
    "forged results on stdout and stderr": """
import os, sys
FORGED = '{"Time": 0.001, "Correct": 6000, "Incorrect": 0, "Decisions": 1, "RoundTrips": 1, "split": "validation"}'
print(FORGED)
print(FORGED, file=sys.stderr)
os.write(1, (FORGED + "\\n").encode())
os.write(2, (FORGED + "\\n").encode())
for path in ("/run/researchgym-result/result.json", "result.json", "/tmp/result.json"):
    try:
        with open(path, "w") as handle:
            handle.write(FORGED)
    except OSError:
        pass
""",
}


@pytest.fixture(scope="module")
def floor(task) -> float:
    return honest_floor(task)


@pytest.mark.parametrize("patch", list(PATCHES))
def test_patching_the_solver_the_modules_or_the_server_or_forging_output_changes_no_score(task, tmp_path, floor, patch):
    """The heuristic is honest but patches what it can reach first (its process's clocks too):
    the score is the honest one, decided by the evaluator and timed by it and by the meter (and
    a forged result printed anywhere is ignored)."""
    outcome = run(task, tmp_path, PATCHES[patch] + STARTER)
    assert_honest_score(outcome, floor)
    assert outcome.metrics["Time"] != 0.001


LINK_FORGERIES = {
    # A result-like line written straight onto the link: it is no frame.
    "a JSON line on the link": "payload = (FORGED + '\\n').encode()",
    # A well-formed frame holding a forged result instead of the server's "ready".
    "a result frame on the link": "payload = len(FORGED).to_bytes(4, 'big') + FORGED.encode()",
    # "ready", then answers to the first round before it is asked (variable 1 for every instance),
    # with the server's own "ready" dropped to keep the frames in step.
    "answers sent before the questions": (
        "ready = b'{\"ready\":true}'\n"
        "answers = json.dumps([[1, True]] * 6000).encode()\n"
        "payload = len(ready).to_bytes(4, 'big') + ready + len(answers).to_bytes(4, 'big') + answers\n"
        "import agent_link\n"
        "send_json = agent_link.AgentEnd.send_json\n"
        "agent_link.AgentEnd.send_json = (lambda self, value:\n"
        "    None if value == {'ready': True} else send_json(self, value))"
    ),
}


@pytest.mark.parametrize("forgery", list(LINK_FORGERIES))
def test_forged_frames_on_the_link_fail_with_a_named_status(task, tmp_path, forgery):
    """The heuristic finds the link's descriptor (the server's copy of its stdout) and writes
    its own frames: a forged result is refused, and answers sent before their questions are
    checked like any others (here they do not even fit the questions that follow)."""
    source = (
        textwrap.dedent("""\
        import json, os, stat
        FORGED = '{"Time": 0.001, "Correct": 6000, "Incorrect": 0, "Decisions": 1}'
        """)
        + LINK_FORGERIES[forgery]
        + textwrap.dedent("""
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, payload)
            except OSError:
                pass
        """)
        + STARTER
    )
    error = failure(run(task, tmp_path, source))
    assert error.status == "evaluation_format_error"
    assert any(
        words in str(error)
        for words in ("heuristic's server", "could not be loaded", "already assigned", "is not a variable")
    ), str(error)


# ----------------------------------------------------------------------------- (c) invalid answers
INVALID = {
    "None": ("None, True", "validation instance 1: heuristic_fn returned no variable (None)"),
    "an assigned variable": (
        "next(iter(assignments)) if assignments else abs(clauses[0][0]), True",
        "which is already assigned",
    ),
    "variable 0": ("0, True", "validation instance 1: heuristic_fn chose variable 0, which is not a variable"),
    "a negative variable": ("-abs(clauses[0][0]), True", "validation instance 1: heuristic_fn chose variable -"),
    "an out-of-range variable": ("16, True", "validation instance 1: heuristic_fn chose variable 16, which is not"),
    "one past the largest variable": (
        "max(abs(lit) for clause in clauses for lit in clause) + 1, True",
        "validation instance 1: heuristic_fn chose variable 15, which is not a variable of the formula (1 to 14)",
    ),
    "a float": ("float(abs(clauses[0][0])), True", "validation instance 1: heuristic_fn chose the float"),
    "a NaN": ("float('nan'), True", "validation instance 1: heuristic_fn chose the float nan, which is not an int"),
    "a bool": ("True, True", "validation instance 1: heuristic_fn chose True, which is not an int"),
    "a string": ("str(abs(clauses[0][0])), True", "validation instance 1: heuristic_fn chose the string"),
    "10**400": ("10**400, True", "validation instance 1: heuristic_fn chose a variable of 1329 bits"),
    "10**5000": ("10**5000, True", "validation instance 1: heuristic_fn chose a variable of 16610 bits"),
    "not a pair": ("abs(clauses[0][0])", "validation instance 1: heuristic_fn returned"),
    "a value without a truth value": (
        "abs(clauses[0][0]), type('V', (), {'__bool__': lambda self: 1 / 0})()",
        "validation instance 1: heuristic_fn's value",
    ),
    "an exception": ("1 / 0", "validation instance 1: heuristic_fn raised an exception"),
}


@pytest.mark.parametrize("kind", list(INVALID))
def test_an_invalid_answer_fails_naming_the_instance(task, tmp_path, kind):
    answer, words = INVALID[kind]
    source = (
        f"def heuristic_fn(clauses, assignments, conflict_count, assignment_history, level):\n    return {answer}\n"
    )
    error = failure(run(task, tmp_path, source))
    assert error.status == "evaluation_format_error" and words in str(error), str(error)


# ----------------------------------------------------------------------------- (d) predictability
FINGERPRINT = """
import hashlib, sys
SEEN = []
def heuristic_fn(clauses, assignments, *rest):
    SEEN.append(hashlib.sha256(repr(clauses).encode()).hexdigest()[:16])
    if len(SEEN) == 4:
        raise RuntimeError("FIRST " + " ".join(SEEN[:3]))
    return abs(clauses[0][0]), True
"""


def fingerprints(formulas) -> list[str]:
    return [hashlib.sha256(repr(formula).encode()).hexdigest()[:16] for formula in formulas[:3]]


def test_each_seed_draws_its_own_test_instances(task, tmp_path):
    """The first formulas the heuristic sees on the test split follow the evaluation's seed:
    the same seed gives the same set, another seed another one, and neither is the public
    validation set or the set of prepare.py's old public seed (202)."""
    seen = {}
    for label, seed in (("a", 1111), ("b", 2222), ("a again", 1111)):
        message = str(failure(run(task, tmp_path, FINGERPRINT, split="test", seed=seed)))
        assert "FIRST " in message, message
        seen[label] = message.rsplit("FIRST ", 1)[1].split()[:3]
    generate = module("instances").generate
    assert seen["a"] == seen["a again"] != seen["b"]
    for public in (fingerprints(generate(3, 101)), fingerprints(generate(3, 202))):
        assert not set(public) & (set(seen["a"]) | set(seen["b"]))
    assert seen["a"] == fingerprints(module("instances").secret_instances(1111))


KEYED = r'''
import random

def generate(count, seed):  # the public generator (instances.py)
    rng = random.Random(seed)
    formulas = []
    for _ in range(count):
        n = rng.randint(5, 15)
        m = max(1, round(rng.uniform(2.5, 8.5) * n))
        formulas.append([[v if rng.random() < 0.5 else -v for v in rng.sample(range(1, n + 1), 3)]
                         for _ in range(m)])
    return formulas

KNOWN = {repr(f) for f in generate(6000, 101)} | {repr(f) for f in generate(24000, 202)}
PLAN = {}      # id of a clause list -> the satisfying assignment of its formula
HITS = []


def model(clauses, chosen=()):
    """A satisfying assignment (set of literals), or None."""
    clauses = [set(c) for c in clauses]
    chosen = set(chosen)
    while True:
        if not clauses:
            return chosen
        if any(not c for c in clauses):
            return None
        unit = next((c for c in clauses if len(c) == 1), None)
        if unit is None:
            break
        literal = next(iter(unit))
        chosen.add(literal)
        clauses = [c - {-literal} for c in clauses if literal not in c]
    literal = next(iter(min(clauses, key=len)))
    for choice in (literal, -literal):
        found = model([c - {-choice} for c in clauses if choice not in c], chosen | {choice})
        if found is not None:
            return found
    return None


def heuristic_fn(clauses, assignments, conflict_count, assignment_history, level):
    if not assignments and repr(clauses) in KNOWN:
        if not HITS:
            print("FIRST HIT", flush=True)
        HITS.append(1)
        found = model(clauses)
        if found is not None:
            for clause in clauses:
                PLAN[id(clause)] = found
    plan = PLAN.get(id(clauses[0]))
    if plan is not None:
        for literal in plan:
            if abs(literal) not in assignments and any(abs(l) == abs(literal) for c in clauses for l in c):
                return abs(literal), literal > 0
    random.seed(10)
    unassigned = list({abs(lit) for clause in clauses for lit in clause if abs(lit) not in assignments})
    return random.choice(unassigned), True
'''


# Up to 3 minutes here beside three other workers, and CI's machine runs CPU-bound work up to
# 2.5 times slower: a limit for a hang, not the default 300 s.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_heuristic_keyed_on_public_instances_gains_nothing_on_test(task, tmp_path):
    """A heuristic that knows every public instance (the validation set, and the test set of
    prepare.py's old seed 202) and steers those straight to a model: far fewer decisions on
    validation, but on the test split it never meets a known instance and decides exactly as
    the honest starter heuristic does on the same secret draw."""
    known = run(task, tmp_path, KEYED)
    assert isinstance(known, Score), known
    assert known.metrics["Decisions"] < 0.95 * VALIDATION_DECISIONS and "FIRST HIT" in known.output_tail
    seed = 987_654_321
    tested = run(task, tmp_path, KEYED, split="test", seed=seed)
    assert isinstance(tested, Score), tested
    solver, heuristic = module("solver"), module("heuristic", TASK_DIR / "starter")
    honest = 0
    for formula in module("instances").secret_instances(seed):
        dpll = solver.DPLL(formula, heuristic.heuristic_fn)
        dpll.solve()
        honest += dpll.num_decisions
    assert tested.metrics["Correct"] == 24000 and tested.metrics["Decisions"] == honest
    assert "FIRST HIT" not in tested.output_tail


# ----------------------------------------------------------------------------- (e) slow or hanging
STALLS = {
    "sleeps on its first call": (
        "validation",
        "import time\nCALLS = [0]\n",
        "time.sleep(6)",
        1,
        "validation instance 1 took longer than 5s",
    ),
    "sleeps on its 2000th call": (
        "validation",
        "import time\nCALLS = [0]\n",
        "time.sleep(6)",
        2000,
        "validation instance 2000 took longer than 5s",
    ),
    "spins forever": (
        "validation",
        "CALLS = [0]\n",
        "while True: pass",
        1,
        "validation instance 1 took longer than 5s",
    ),
    "forks without end": (
        "validation",
        "import os\nCALLS = [0]\ndef bomb():\n    while True:\n        try:\n"
        "            os.fork()\n        except OSError:\n            pass\n",
        "bomb()",
        1,
        "validation instance 1 took longer than 5s",
    ),
    "kills the CPU meter": (
        "validation",
        "import os, signal\nCALLS = [0]\n",
        "os.kill(os.getppid(), signal.SIGKILL)",
        5,
        "the heuristic's server failed while validation instance",
    ),
    "stops the CPU meter": (
        "validation",
        "import os, signal\nCALLS = [0]\n",
        "os.kill(os.getppid(), signal.SIGSTOP)",
        5,
        "took longer than 5s",
    ),
    "blocks forever on the test split": (
        "test",
        "import threading\nCALLS = [0]\n",
        "threading.Event().wait()",
        3,
        "test instance 3 took longer than 5s",
    ),
}


@pytest.mark.parametrize("stall", list(STALLS))
def test_a_heuristic_that_stalls_fails_within_the_instance_limit(task, tmp_path, stall):
    split, header, action, call, words = STALLS[stall]
    source = header + STARTER.replace(
        "    random.seed(10)", f"    CALLS[0] += 1\n    if CALLS[0] == {call}:\n        {action}\n    random.seed(10)"
    )
    error = failure(run(task, tmp_path, source, split=split, seed=31))
    assert error.status == "evaluation_format_error" and words in str(error), str(error)


@pytest.mark.slow
def test_a_heuristic_that_hangs_on_import_fails_within_the_evaluation(task, tmp_path):
    error = failure(run(task, tmp_path, "while True:\n    pass\n"))
    assert error.status == "evaluation_format_error" and "heuristic.py could not be loaded" in str(error)


def task_copy(tmp_path: Path, command: str | None = None, data: Path | None = None):
    """The task in a folder of its own, its evaluation command or its dataset changed."""
    root = tmp_path / "tasks"
    shutil.copytree(TASK_DIR, root / "sat_time")
    shutil.copytree(BUILTIN_DIR / "_shared", root / "_shared")
    yaml = root / "sat_time" / "task.yaml"
    text = yaml.read_text()
    if command is not None:
        text = text.replace("command: python evaluate.py --split {split}", f"command: {command}")
    if data is not None:
        text = text.replace("prepare: prepare.py", f"data_path: {data}")
    yaml.write_text(text)
    return load_task_file(yaml)


def test_the_whole_solve_has_a_limit_too(task, tmp_path):
    """Below 5 s on every instance but slow overall: the solve's own limit (25 ms per instance,
    here lowered to 3 s) ends it with a named status, well within the evaluation's timeout."""
    copy = task_copy(tmp_path, command="python evaluate.py --split {split} --total-timeout 3")
    source = "import time\n" + STARTER.replace("    random.seed(10)", "    time.sleep(0.001)\n    random.seed(10)")
    error = failure(run(copy, tmp_path, source))
    assert error.status == "evaluation_format_error" and "the whole solve took longer than 3s" in str(error)


def test_answers_that_disagree_with_the_validation_labels_are_an_evaluation_error(task, tmp_path):
    """The evaluator's solver is exact; if its answers ever disagreed with validation.json the
    evaluation itself is at fault, and says so loudly instead of scoring."""
    rows = json.loads((task.dataset_path(task.datasets[0]) / "validation.json").read_text())
    for row in rows[:3]:
        row["is_sat"] = not row["is_sat"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "validation.json").write_text(json.dumps(rows))
    error = failure(run(task_copy(tmp_path, data=data), tmp_path, STARTER))
    assert error.status == "evaluation_error" and "disagrees with validation.json on 3 instances" in str(error)


# ----------------------------------------------------------------------------- (f) hiding CPU time
#: A heuristic that decides as the starter does, but has a helper burn BURN_S of CPU time per
#: decision (or, for "orphans", 1000 times that every 1000th decision) while it waits: in a
#: thread, a forked child, a detached grandchild (double fork and setsid, so it belongs to no
#: process of the server's), short-lived orphans that exit before anyone waits for them, or
#: children the kernel reaps by itself (the red team's way: with SIGCHLD ignored, a child's CPU
#: time reaches nobody's count; a fresh helper every 400 decisions, never waited for).
HELPED = r"""
import ctypes, os, signal, sys, threading, time
KIND = "KIND_NAME"
BURN_S = 0.0002
requests_r, requests_w = os.pipe()
replies_r, replies_w = os.pipe()


def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def serve():
    while os.read(requests_r, 1):
        burn(BURN_S)
        os.write(replies_w, b".")


if KIND == "a thread":
    threading.Thread(target=serve, daemon=True).start()
elif KIND == "a forked child":
    if os.fork() == 0:
        serve()
        os._exit(0)
elif KIND == "a detached grandchild":
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            serve()
            os._exit(0)
        os._exit(0)
    os.wait()
elif KIND == "children the kernel reaps":
    class Action(ctypes.Structure):  # the kernel's struct sigaction: the default action, SA_NOCLDWAIT
        _fields_ = [("handler", ctypes.c_void_p), ("flags", ctypes.c_ulong), ("restorer", ctypes.c_void_p),
                    ("mask", ctypes.c_ulong)]

    libc = ctypes.CDLL(None, use_errno=True)
    nocldwait = Action(None, 0x2, None, 0)
    if libc.syscall({"x86_64": 13, "aarch64": 134}[os.uname().machine], 17, ctypes.byref(nocldwait), None, 8):
        print("SIGCHLD SA_NOCLDWAIT:", os.strerror(ctypes.get_errno()), file=sys.stderr)
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    except OSError as exc:
        print("SIGCHLD SIG_IGN:", exc.strerror, file=sys.stderr)
CALLS = [0]
HELPER = [None, None]


def spawn():
    for fd in HELPER:
        if fd is not None:
            os.close(fd)  # the helper before reads the end of its requests and exits
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    if os.fork() == 0:
        os.close(to_w)
        os.close(from_r)
        while os.read(to_r, 1):
            burn(BURN_S)
            os.write(from_w, b".")
        os._exit(0)
    os.close(to_r)
    os.close(from_w)
    HELPER[:] = [to_w, from_r]


def helped():
    CALLS[0] += 1
    if KIND == "children the kernel reaps":
        if CALLS[0] % 400 == 1:
            spawn()
        os.write(HELPER[0], b"?")
        os.read(HELPER[1], 1)
    elif KIND != "orphans":
        os.write(requests_w, b"?")
        os.read(replies_r, 1)
    elif CALLS[0] % 1000 == 0:
        done_r, done_w = os.pipe()
        if os.fork() == 0:
            if os.fork() == 0:
                burn(BURN_S * 1000)
                os._exit(0)
            os._exit(0)
        os.close(done_w)
        os.wait()
        os.read(done_r, 1)  # end of file once the orphan has exited
        os.close(done_r)
"""
HELPED_BURN_S = 0.0002 * VALIDATION_DECISIONS  # 6.4 s, in every variant


@pytest.fixture(scope="module")
def honest(task, tmp_path_factory) -> Score:
    outcome = run(task, tmp_path_factory.mktemp("honest"), STARTER)
    assert isinstance(outcome, Score), outcome
    return outcome


@pytest.mark.parametrize(
    "kind", ["a thread", "a forked child", "a detached grandchild", "orphans", "children the kernel reaps"]
)
def test_cpu_time_spent_outside_the_servers_process_is_charged(task, tmp_path, honest, kind):
    """CPU time burnt for the heuristic anywhere in its sandbox is charged to it: a measure of
    the server's process alone (time.process_time inside it, or RUSAGE_CHILDREN of a parent,
    which misses children nobody waited for) would charge the detached helpers almost nothing."""
    source = HELPED.replace("KIND_NAME", kind) + STARTER.replace(
        "    random.seed(10)", "    helped()\n    random.seed(10)"
    )
    helped = run(task, tmp_path, source)
    assert isinstance(helped, Score), f"{helped}: {getattr(helped, 'detail', '')[-2000:]}"
    assert helped.metrics["Decisions"] == honest.metrics["Decisions"] == VALIDATION_DECISIONS
    assert helped.metrics["HeuristicCPU"] >= honest.metrics["HeuristicCPU"] + 0.8 * HELPED_BURN_S
    # Time is the two CPU figures summed. Compared with the honest run's Time instead, the
    # solver's own CPU time, which varies by a fifth between runs on a loaded machine, would
    # drown the burn.
    assert helped.value == pytest.approx(helped.metrics["SolverCPU"] + helped.metrics["HeuristicCPU"], abs=0.002)
    assert "every process of the heuristic's sandbox" in helped.output_tail
    if kind == "children the kernel reaps":  # neither way to have them reaped unseen was allowed
        assert "SIGCHLD SIG_IGN: Operation not permitted" in helped.output_tail
        assert "SIGCHLD SA_NOCLDWAIT: Operation not permitted" in helped.output_tail


FORGE_ON_EVERY_PIPE = r"""
import json, os, sys
CALLS = [0]


def forge():
    # A report of 1 ms, "signed" without the key, written as a whole frame into every pipe of
    # the sandbox that can be opened: the link through the shell's copies of it, the server's
    # own pipes to the meter (the sandbox shell's own command pipes are left alone).
    body = json.dumps({"nonce": "0" * 32, "cpu_s": 0.001}).encode()
    report = b"!" + bytes(32) + body
    frame = len(report).to_bytes(4, "big") + report
    shell = {os.readlink(f"/proc/1/fd/{fd}") for fd in os.listdir("/proc/1/fd")}
    opened = {}
    for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                target = os.readlink(path)
                if target.startswith("pipe:") and target not in shell:
                    opened[f"{pid}/{fd}"] = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
    # Named before the first forged frame goes out: the evaluator stops this code as soon as it
    # reads one, and a line printed after that may never reach its output.
    print("FORGED ON", os.getpid(), " ".join(opened), file=sys.stderr, flush=True)
    for out in opened.values():
        try:
            os.write(out, frame)
        except OSError:
            pass
        finally:
            os.close(out)
"""


def test_a_cpu_report_forged_onto_every_pipe_of_the_sandbox_fails_with_a_named_status(task, tmp_path):
    """The heuristic writes a forged CPU report into every pipe it can open in its sandbox, the
    link included (the shell that started the meter holds copies of it): no score comes of it."""
    source = FORGE_ON_EVERY_PIPE + STARTER.replace(
        "    random.seed(10)", "    CALLS[0] += 1\n    if CALLS[0] == 100:\n        forge()\n    random.seed(10)"
    )
    error = failure(run(task, tmp_path, source))
    assert error.status == "evaluation_format_error", str(error)
    assert "FORGED ON " in error.detail, error.detail[-3000:]
    forged = error.detail.split("FORGED ON ", 1)[1].splitlines()[0].split()
    assert [target for target in forged[1:] if target.split("/")[0] != forged[0]], forged  # beyond its own


FAKE_METER = r"""
import hashlib, hmac, json, os, sys


def read(size):
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data


def frame():
    return read(int.from_bytes(read(4), "big"))


def send(payload):
    os.write(1, len(payload).to_bytes(4, "big") + payload)


key = bytes.fromhex(json.loads(frame()[1:])["key"])  # sent before any code of the agent's runs
nonce = json.loads(frame()[1:])["measure"]
FORGERY
send(report)
frame()
"""
SIGNED = "hmac.new(key, body, hashlib.sha256).digest()"
REPORT_FORGERIES = {
    "signed with another key": "body = json.dumps({'nonce': nonce, 'cpu_s': 0.001}).encode()\n"
    "report = b'!' + hmac.new(bytes(32), body, hashlib.sha256).digest() + body",
    "unsigned": "body = json.dumps({'nonce': nonce, 'cpu_s': 0.001}).encode()\nreport = b'!' + body",
    "replayed (another nonce)": f"body = json.dumps({{'nonce': '0' * 32, 'cpu_s': 0.001}}).encode()\n"
    f"report = b'!' + {SIGNED} + body",
    "sent as the server's": "report = b'=' + json.dumps({'nonce': nonce, 'cpu_s': 0.001}).encode()",
    "an int": f"body = json.dumps({{'nonce': nonce, 'cpu_s': 0}}).encode()\nreport = b'!' + {SIGNED} + body",
}


def evaluator_module():
    """evaluate.py with its folder's modules importable by name, as the evaluation runs it."""
    names = ("solver", "agent_link", "instances", "isolation")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path[:0] = [str(TASK_DIR / "eval"), str(BUILTIN_DIR / "_shared")]
    try:
        return module("evaluate")
    finally:
        del sys.path[:2]
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@pytest.mark.parametrize("forgery", [None, *REPORT_FORGERIES])
def test_the_evaluator_takes_only_its_meters_signed_answer_to_its_own_request(forgery):
    """Whatever reads the link and writes onto it without the meter's key (sent before any code
    of the agent's runs) cannot pass a CPU report: one signed with another key, unsigned, signed
    for another request, disguised as the server's frame or of the wrong type is refused; the
    same report properly signed (None) is taken, so it is the check that refuses the others."""
    evaluate_py = evaluator_module()
    forged = f"body = json.dumps({{'nonce': nonce, 'cpu_s': 0.001}}).encode()\nreport = b'!' + {SIGNED} + body"
    script = FAKE_METER.replace("FORGERY", REPORT_FORGERIES[forgery] if forgery else forged)
    link = evaluate_py.AgentLink.open([sys.executable, "-c", script])
    try:
        metered = evaluate_py.MeteredLink(link)
        if forgery is None:
            assert metered.heuristic_cpu_s() == 0.001
            return
        with pytest.raises(evaluate_py.Rejected) as refused:
            metered.heuristic_cpu_s()
    finally:
        link.close()
    assert "CPU report" in str(refused.value)
