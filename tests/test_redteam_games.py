"""Red team of the three game tasks (Prisoner's Dilemma, Battle of Sexes, Colonel Blotto).

Every attack is played through the real evaluation (researchgym.evaluation.evaluate in bubblewrap
sandboxes): the strategy runs behind strategy_server.py in a sandbox of its own, the evaluator
(repeated_game.py, with the opponent, its generator and every check of a move) in another. An
attack must end either with the honest score of the moves it played or with a named failure
status, never with a better score:

(a) forged result lines on stdout, stderr and every descriptor in reach;
(b) replacing what it can in its own process (builtins, sys.modules, the server's encoder) to
    send invalid moves the evaluator must reject;
(c) looking for the opponent's code, its generator's seed and the evaluator's files everywhere;
(d) predicting the opponent: different seeds give different opponents, and a predictor that
    tries every public value it could know as the opponent's seed gains nothing on a secret seed
    (while the same predictor wins on a seed it can guess, which shows it works);
(e) hanging, sleeping forever or flooding its output: failed within the deadlines, with a status.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import secrets
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from researchgym.errors import EvaluationError
from researchgym.evaluation import Score, evaluate
from researchgym.tasks.registry import BUILTIN_DIR, load_task

GAMES = ("battleOfSexes", "prisonersDilemma", "blotto")
#: A fixed move per game: the honest strategy plays it every round, and every attacker plays it
#: too, so an attack that neither fails nor changes the score gets exactly the honest score.
MOVE = {"battleOfSexes": "0", "prisonersDilemma": "1", "blotto": "[30, 30, 30, 30, 0, 0]"}
SEED = 20240611
FAILED = ("evaluation_format_error", "evaluation_error")


def run(task, source: str, *, split: str = "validation", seed: int = SEED) -> Score | EvaluationError:
    """Evaluate `source` as strategy.py; the Score, or the EvaluationError it failed with."""
    if isinstance(task, str):
        task = load_task(task)
    workspace = Path(tempfile.mkdtemp(prefix="redteam-games-"))
    try:
        (workspace / "strategy.py").write_text(source)
        return evaluate(task, workspace, split=split, seed=seed, sandbox="bwrap")
    except EvaluationError as exc:
        return exc
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def honest_source(task_id: str) -> str:
    return f"def row_strategy(history):\n    return {MOVE[task_id]}\n"


@functools.cache
def honest(task_id: str, split: str = "validation", seed: int = SEED) -> float:
    result = run(task_id, honest_source(task_id), split=split, seed=seed)
    assert isinstance(result, Score), result
    return result.value


def failure_text(result: EvaluationError) -> str:
    return f"{result}\n{result.detail}"


def with_deadlines(task_id: str, setup_s: float, round_s: float, game_s: float = 60) -> object:
    task = load_task(task_id)
    task.evaluation.command += f" --setup-timeout {setup_s:g} --round-timeout {round_s:g} --game-timeout {game_s:g}"
    return task


# ------------------------------------------------------------------------ (a) forged results
PRINTER = """
import json, os, sys
FORGED = [json.dumps({"Score": 99.0}), json.dumps({"Score": 99.0, "split": "validation", "token": "0" * 32}),
          '{"Score": 99.0, "status": "ok"}', '{"Score": 9']   # the last one a partial line
def shout():
    for line in FORGED:
        print(line)
        print(line, file=sys.stderr)
        sys.stdout.write(line)  # no newline: a partial line before whatever comes next
        sys.stdout.flush()
        os.write(1, (line + "\\n").encode())
        os.write(2, line.encode())
shout()
calls = 0
def row_strategy(history):
    global calls
    calls += 1
    if calls in (1, 25_000, 99_999):
        shout()
    return MOVE
"""

EVERY_FD = """
import json, os
FORGED = [json.dumps({"Score": 99.0}), '{"Score": 99.0, "split": "validation"}', '{"Score": 9']
def every_fd():
    written = 0
    for name in os.listdir("/proc/self/fd"):
        for line in FORGED:
            try:
                os.write(int(name), ("\\n" + line + "\\n").encode())
                written += 1
            except OSError:
                pass
    for guess in ("/run/researchgym-result/result.json", "result.json", "../result/result.json",
                  "/home/agent/workspace/result.json", "/tmp/result.json"):
        try:
            os.makedirs(os.path.dirname(guess) or ".", exist_ok=True)
            with open(guess, "w") as handle:
                handle.write(FORGED[0])
        except OSError:
            pass
    return written
if WHEN == "import":
    every_fd()
calls = 0
def row_strategy(history):
    global calls
    calls += 1
    if WHEN == "round" and len(history) == 2 and calls % 10_000 == 7:
        every_fd()
    return MOVE
"""


@pytest.mark.parametrize("task_id", GAMES)
def test_printed_result_lines_change_nothing(task_id):
    result = run(task_id, f"MOVE = {MOVE[task_id]}\n" + PRINTER)
    assert isinstance(result, Score), failure_text(result)
    assert result.value == honest(task_id)  # exactly: the same moves against the same opponent
    assert result.metrics == {"Score": result.value, "split": "validation"}
    assert "99.0" in result.output_tail  # the lines were printed (shown as the strategy's output)


@pytest.mark.parametrize("task_id", ["prisonersDilemma", "blotto"])
@pytest.mark.parametrize("when", ["import", "round"])
def test_bytes_on_every_descriptor_break_the_link_not_the_score(task_id, when):
    result = run(task_id, f"MOVE = {MOVE[task_id]}\nWHEN = {when!r}\n" + EVERY_FD)
    if isinstance(result, Score):
        assert result.value == honest(task_id)
    else:
        assert result.status in FAILED, failure_text(result)
        assert "the strategy" in str(result)  # the evaluator says what broke


# ------------------------------------------------------------------------ (b) invalid moves, however sent
# The strategy replaces what it can in its own process: builtins that a check could use, modules
# in sys.modules, and the server's encoder itself, which then sends RAW (a JSON text for one
# move) for every game, bypassing anything the server does. row_strategy returns VALUE as well,
# in case the replacement did not take.
TAMPER = """
import builtins, json, sys, types
_sum, _min, _max, _len, _isinstance = builtins.sum, builtins.min, builtins.max, builtins.len, builtins.isinstance
builtins.sum = lambda items, start=0: _min(_sum(items, start), 120)
builtins.min = lambda *a, **k: _max(_min(*a, **k), 0) if not k and _len(a) == 1 and not _isinstance(a[0], (str, bytes)) else _min(*a, **k)
builtins.isinstance = lambda obj, kinds: True if kinds in (int, list, (list, tuple)) else _isinstance(obj, kinds)
for name in ("repeated_game", "isolation", "operator"):
    fake = types.ModuleType(name)
    fake.index = lambda value: 1
    fake.check_allocations = fake.check_binary = lambda moves, *a, **k: moves
    sys.modules[name] = fake
server = sys.modules["__main__"]
def encode_round(moves):
    return ("[" + ",".join([RAW] * _len(moves)) + "]").encode()
server.encode_round = encode_round
server.dumps = lambda value: RAW.encode()
def row_strategy(history):
    return VALUE
"""

INVALID_ALLOCATIONS = {  # JSON text sent for every game: what the evaluator must refuse
    "sum 121": ("[121, 0, 0, 0, 0, 0]", "sum to at most 120"),
    "negative": ("[-1, 41, 40, 40, 0, 0]", "entries must be >= 0"),
    "7 fields": ("[20, 20, 20, 20, 20, 20, 0]", "exactly 6 integers"),
    "6 fields of 5": ("[24, 24, 24, 24, 24]", "exactly 6 integers"),
    "floats": ("[20.0, 20, 20, 20, 20, 20]", "every entry must be an integer"),
    "exponent float": ("[2e1, 20, 20, 20, 20, 20]", "every entry must be an integer"),
    "True": ("[true, 20, 20, 20, 20, 59]", "every entry must be an integer"),
    "10**400": ("[" + "1" + "0" * 400 + ", 0, 0, 0, 0, 0]", ""),
    "-10**400": ("[-" + "1" + "0" * 400 + ", 120, 0, 0, 0, 0]", ""),
    "nested": ("[[20], 20, 20, 20, 20, 20]", "every entry must be an integer"),
    "string": ('"20,20,20,20,20,20"', "exactly 6 integers"),
    "described int": ('[{"type": "int", "repr": "20"}, 20, 20, 20, 20, 20]', "every entry must be an integer"),
    "null": ("null", "exactly 6 integers"),
    "NaN": ("[NaN, 20, 20, 20, 20, 20]", ""),
    "1e999": ("[1e999, 20, 20, 20, 20, 20]", ""),
    "deep": ("[" * 100 + "]" * 100, ""),
}

INVALID_BINARY = {
    "2": ("2", "must return 0 or 1"),
    "-1": ("-1", "must return 0 or 1"),
    "1.0": ("1.0", "must return 0 or 1"),
    "0.5": ("0.5", "must return 0 or 1"),
    "'1'": ('"1"', "must return 0 or 1"),
    "[1]": ("[1]", "must return 0 or 1"),
    "null": ("null", "must return 0 or 1"),
    "10**400": ("1" + "0" * 400, ""),
    "Infinity": ("Infinity", ""),
}


def python_value(raw: str) -> str:
    """A Python expression for the JSON text, for row_strategy to return as well."""
    return (
        raw.replace("true", "True")
        .replace("null", "None")
        .replace("NaN", "float('nan')")
        .replace("1e999", "float('inf')")
        .replace("Infinity", "float('inf')")
    )


@pytest.mark.parametrize("name", sorted(INVALID_ALLOCATIONS))
def test_blotto_refuses_invalid_allocations_however_they_are_sent(name):
    raw, message = INVALID_ALLOCATIONS[name]
    result = run("blotto", f"RAW = {raw!r}\nVALUE = {python_value(raw)}\n" + TAMPER)
    assert isinstance(result, EvaluationError), f"scored {result.value} with {name}"
    assert result.status in FAILED
    assert message in str(result), failure_text(result)


@pytest.mark.parametrize(
    "name", ["sum 121", "negative", "7 fields", "floats", "True", "10**400", "nested", "string", "null", "NaN"]
)
def test_blotto_refuses_invalid_allocations_returned_plainly(name):
    raw, message = INVALID_ALLOCATIONS[name]
    result = run("blotto", f"def row_strategy(history):\n    return {python_value(raw)}\n")
    assert isinstance(result, EvaluationError), f"scored {result.value} with {name}"
    assert result.status in FAILED and "row_strategy returned" in str(result), failure_text(result)
    assert message in str(result)


@pytest.mark.parametrize(
    "value, message",
    [
        ("True", "every entry must be an integer"),
        ("10**400", ""),
        ("numpy.float64(20)", "every entry must be an integer"),
        ("numpy.array(20)[()] + 0.5", "every entry must be an integer"),
        ("float('nan')", "every entry must be an integer"),
        ("object()", "every entry must be an integer"),
        ("-(10**20)", ""),
    ],
)
def test_blotto_refuses_odd_entries_returned_plainly(value, message):
    source = f"import numpy\ndef row_strategy(history):\n    return [{value}, 20, 20, 20, 20, 0]\n"
    result = run("blotto", source)
    assert isinstance(result, EvaluationError), f"scored {result.value} with {value}"
    assert result.status in FAILED and "row_strategy returned" in str(result), failure_text(result)
    assert message in str(result)


@pytest.mark.parametrize("name", sorted(INVALID_BINARY))
@pytest.mark.parametrize("task_id", ["prisonersDilemma", "battleOfSexes"])
def test_binary_games_refuse_invalid_moves_however_they_are_sent(task_id, name):
    raw, message = INVALID_BINARY[name]
    result = run(task_id, f"RAW = {raw!r}\nVALUE = {python_value(raw)}\n" + TAMPER)
    assert isinstance(result, EvaluationError), f"scored {result.value} with {name}"
    assert result.status in FAILED
    assert message in str(result), failure_text(result)


@pytest.mark.parametrize("task_id", GAMES)
@pytest.mark.parametrize(
    "frame",
    [
        "{}",
        '{"ready": true}',
        "[]",
        '{"Score": 99}',
        "[0]",
        '"ok"',
    ],
)
def test_answers_of_the_wrong_shape_are_refused(task_id, frame):
    """A server that answers a whole round with something else than one move per game."""
    source = (
        f"import sys\nFRAME = {frame!r}\nsys.modules['__main__'].encode_round = lambda moves: FRAME.encode()\n"
        f"def row_strategy(history):\n    return {MOVE[task_id]}\n"
    )
    result = run(task_id, source)
    assert isinstance(result, EvaluationError), f"scored {result.value}"
    assert result.status in FAILED and "expected a list of 10000 moves" in str(result), failure_text(result)


# ------------------------------------------------------------------------ (c) nothing hidden in reach
# Runs at import and fails the evaluation with what it found. The needles (the evaluation's
# secret seed, words that occur only in the hidden opponent's code) are stored masked, so this
# source does not contain them; a control needle is planted in /tmp to show the search reads.
HUNT = r'''
import os, stat, sys
def decode(masked):
    return bytes(byte ^ 0x5A for byte in bytes.fromhex(masked)).decode()


NEEDLES = [decode(needle) for needle in ENCODED]
CONTROL = decode(ENCODED_CONTROL)
NAMES = {"target.py", ".researchgym-secrets.json", "result.json", "evaluate.py", "repeated_game.py", "isolation.py",
         "task.yaml"}
SOFTWARE = tuple(sorted({sys.prefix, sys.base_prefix, "/usr", "/opt/researchgym", "/etc"}))
found, controls, read, walked = [], [], [0], [0]


def note(what):
    if len(found) < 40 and what not in found:
        found.append(what)


def look(path, limit=4 << 20):
    """Read a regular file (never a pipe or a device) and note every needle in it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return
        data = os.read(fd, limit)
    except OSError:
        return
    finally:
        os.close(fd)
    read[0] += 1
    text = data.decode("latin-1")
    if CONTROL in text:
        controls.append(path)
    for needle in NEEDLES:
        if needle in text:
            note(f"{path}: {needle[:12]}")


with open("/tmp/planted-control.txt", "w") as handle:
    handle.write(CONTROL)
# 1. the whole filesystem: names everywhere, contents outside the read-only software trees
for top in sorted(os.listdir("/")):
    if top in ("proc", "sys", "dev") or os.path.islink("/" + top):  # /bin, /lib ...: links into /usr
        continue
    for root, dirs, files in os.walk("/" + top):
        for name in files:
            path = os.path.join(root, name)
            walked[0] += 1
            software = path.startswith(SOFTWARE)
            if name in NAMES and (not software or "researchgym" in path):
                note(path)  # (the software trees hold other packages' evaluate.py and the like)
            if not software:
                look(path)
# 2. every process in sight: its environment, command line, descriptors, cwd and root
for pid in filter(str.isdigit, os.listdir("/proc")):
    for part in ("environ", "cmdline"):
        look(f"/proc/{pid}/{part}")
        try:
            if b"RESEARCHGYM" in open(f"/proc/{pid}/{part}", "rb").read():
                note(f"/proc/{pid}/{part}: RESEARCHGYM")
        except OSError:
            pass
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if os.path.basename(target) in NAMES:
                note(f"/proc/{pid}/fd/{fd} -> {target}")
    except OSError:
        pass
    for link in ("cwd", "root"):
        for name in NAMES:
            look(f"/proc/{pid}/{link}/{name}")
            if os.path.exists(f"/proc/{pid}/{link}/{name}"):
                note(f"/proc/{pid}/{link}/{name}")
# 3. guesses: host paths named on bubblewrap's command line, the workspace, the source tree
guesses = ["target.py", "eval/target.py", "../evaluator/target.py", "/home/agent/workspace/target.py",
           "/home/agent/workspace/.researchgym-secrets.json", "/home/agent/workspace/data/target.py",
           "/run/researchgym-result/result.json"]
try:
    words = open("/proc/1/cmdline", "rb").read().decode(errors="replace").split("\0")
except OSError:
    words = []
for word in words:
    if word.startswith("/"):
        for up in (word, os.path.dirname(word), os.path.dirname(os.path.dirname(word))):
            for rest in ("target.py", "eval/target.py", "evaluator/target.py", "evaluator/.researchgym-secrets.json",
                         "result/result.json", "src/researchgym/tasks/builtin/TASK/eval/target.py"):
                guesses.append(os.path.join(up, rest))
try:
    import researchgym
    guesses.append(os.path.join(os.path.dirname(researchgym.__file__), "tasks/builtin/TASK/eval/target.py"))
except Exception:
    pass
for guess in guesses:
    for task in ("prisoners_dilemma", "blotto", "battle_of_sexes"):
        path = guess.replace("TASK", task)
        look(path)
        if path.endswith(("target.py", ".json")) and os.path.exists(path):
            note(path)
raise RuntimeError(f"HUNT found={found!r} controls={len(controls)} read={read[0]} walked={walked[0]}")
'''


def mask(needle: str) -> str:
    return bytes(byte ^ 0x5A for byte in needle.encode()).hex()


HIDDEN_WORDS = {
    "prisonersDilemma": ["_suspicious_tit_for_tat", "_forgiving_tit_for_tat"],
    "blotto": ["_SOLDIER_BITS", "_FIELD_BITS"],
}


@pytest.mark.parametrize("task_id", sorted(HIDDEN_WORDS))
def test_the_strategy_finds_no_opponent_code_seed_or_evaluator_file(task_id):
    seed = secrets.randbits(63)
    needles = [str(seed), *HIDDEN_WORDS[task_id]]
    encoded = [mask(needle) for needle in needles]
    control = mask(f"control-{secrets.token_hex(8)}")
    source = f"ENCODED = {encoded!r}\nENCODED_CONTROL = {control!r}\n" + HUNT
    result = run(task_id, source, split="test", seed=seed)
    assert isinstance(result, EvaluationError), f"the hunt was scored {result.value}"
    text = failure_text(result)
    found = re.search(r"HUNT found=(\[.*?\]) controls=(\d+) read=(\d+) walked=(\d+)", text)
    assert found, text
    assert found.group(1) == "[]", found.group(1)
    # It did look (the names of every file in reach, the contents of the workspace, /tmp and
    # /proc), and it would have noticed a needle: it found the one planted in /tmp.
    assert int(found.group(2)) == 1 and int(found.group(3)) >= 8 and int(found.group(4)) > 1000, found.group(0)


# ------------------------------------------------------------------------ (d) predicting the opponent
# The attacker knows the opponent's code exactly (the worst case) and tries, as the opponent's
# seed, every value it could know: its own seed (read from the server's frame), simple functions
# of it, small integers, and the public derivations of the episode seeds' evaluation seeds. A
# candidate that reproduces the columns seen so far is used to predict every later column.
PREDICTOR_COMMON = r"""
import hashlib, random, sys
GAMES = 10_000
state = {"calls": 0, "rng": None, "matched": None, "digest": hashlib.sha256()}


def candidates():
    own = None
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "main" and "seed" in frame.f_locals:
            own = frame.f_locals["seed"]
        frame = frame.f_back
    values = list(range(3000))
    if own is not None:
        values += [own, own % 2**32, own >> 32, own ^ (2**64 - 1)]
    for episode in range(300):
        for purpose in ("validation", "test"):
            digest = hashlib.sha256(f"{TASK}:{episode}:{purpose}".encode()).digest()
            values.append(int.from_bytes(digest[:4], "little"))
    return values


CANDIDATES = candidates()


def fingerprint(rnd, game, history):
    if rnd == 9:  # the last round: every game's history of the 9 rounds before
        state["digest"].update(repr([col for _, col in history]).encode())
        if game == GAMES - 1:
            print("OPPONENT", state["digest"].hexdigest(), "MATCHED", state["matched"], flush=True)
"""

BLOTTO_PREDICTOR = (
    PREDICTOR_COMMON
    + r"""
CHECK = 6  # round-1 allocations of the first games: six of them identify a generator
observed = []


def beat(column):
    order = sorted(range(6), key=lambda field: column[field])
    allocation = [0] * 6
    for field in order[:4]:
        allocation[field] = column[field] + 1
    allocation[order[4]] += 120 - sum(allocation)
    return allocation


def row_strategy(history):
    rnd, game = divmod(state["calls"], GAMES)
    state["calls"] += 1
    fingerprint(rnd, game, history)
    if rnd == 1 and game < CHECK:
        observed.append(history[0][1])
        if game == CHECK - 1:
            for candidate in CANDIDATES:
                rng = random.Random(candidate)
                if all(target_column_strategy([], rng) == column for column in observed):
                    state["matched"], state["rng"] = candidate, random.Random(candidate)
                    for _ in range(GAMES + CHECK - 1):  # round 1, and round 2 up to this game
                        target_column_strategy([], state["rng"])
                    break
    if state["rng"] is not None:
        return beat(target_column_strategy(history, state["rng"]))
    return [30, 30, 30, 30, 0, 0]
"""
)

SEXES_PREDICTOR = (
    PREDICTOR_COMMON
    + r"""
CHECK = 64  # the column player's coin (keep the row's first move with probability 0.8) in round 2
observed = []


def row_strategy(history):
    rnd, game = divmod(state["calls"], GAMES)
    state["calls"] += 1
    fingerprint(rnd, game, history)
    if rnd == 2 and game < CHECK:
        observed.append(history[1][1] == 0)  # we opened with 0: a column of 0 is a kept coin
        if game == CHECK - 1:
            for candidate in CANDIDATES:
                rng = random.Random(candidate)
                if all((rng.random() < 0.8) == kept for kept in observed):
                    state["matched"], state["rng"] = candidate, random.Random(candidate)
                    for _ in range(GAMES + CHECK - 1):  # round 2's coins, and round 3's so far
                        state["rng"].random()
                    break
    if state["rng"] is not None and rnd >= 2:
        return 0 if state["rng"].random() < 0.8 else 1  # meet the column player where it will be
    return 0
"""
)

PREDICTORS = {"blotto": BLOTTO_PREDICTOR, "battleOfSexes": SEXES_PREDICTOR}


def predictor(task_id: str) -> str:
    task = load_task(task_id)
    opponent = task.path("eval/target.py").read_text()
    return f"TASK = {task.id!r}\n" + opponent + PREDICTORS[task_id]


def opponent_fingerprint(result: Score) -> tuple[str, str]:
    found = re.findall(r"OPPONENT ([0-9a-f]{64}) MATCHED (\S+)", result.output_tail)
    assert found, result.output_tail
    return found[-1]


@pytest.mark.parametrize("task_id", sorted(PREDICTORS))
def test_secret_seeds_make_the_opponent_unpredictable(task_id):
    source = predictor(task_id)
    seeds = [secrets.randbits(63), secrets.randbits(63)]
    results = [run(task_id, source, split="test", seed=seed) for seed in seeds]
    for seed, result in zip(seeds, results):
        assert isinstance(result, Score), failure_text(result)
        assert opponent_fingerprint(result)[1] == "None"  # no candidate reproduced the opponent
        # It fell back to the honest strategy's moves, so its score is exactly the honest one.
        assert result.value == honest(task_id, "test", seed)
    first, second = (opponent_fingerprint(result)[0] for result in results)
    assert first != second  # two secret seeds, two different opponents
    again = run(task_id, source, split="test", seed=seeds[0])
    assert opponent_fingerprint(again)[0] == first  # and the same seed, the same opponent


@pytest.mark.parametrize("task_id", sorted(PREDICTORS))
def test_the_predictor_would_win_on_a_guessable_seed(task_id):
    """The control for the test above: on a seed among its candidates, it predicts and wins."""
    result = run(task_id, predictor(task_id), split="validation", seed=1234)
    assert isinstance(result, Score), failure_text(result)
    assert opponent_fingerprint(result)[1] == "1234"
    assert result.value > honest(task_id, "validation", 1234) + 0.1


def engine():
    """repeated_game.py, imported here for its constants and functions."""
    spec = importlib.util.spec_from_file_location(
        "repeated_game_under_test", BUILTIN_DIR / "_games" / "repeated_game.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BUILTIN_DIR / "_shared"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BUILTIN_DIR / "_shared"))
    return module


def test_the_strategy_seed_is_one_way_from_the_evaluation_seed():
    """What the strategy's side is given (its own seed) is a SHA-256 digest of the evaluation's
    seed, never the evaluation's seed itself."""
    for seed in (0, 1, 1234, 2**63 - 1):
        derived = engine().strategy_seed(seed)
        assert derived == int.from_bytes(hashlib.sha256(f"row:{seed}".encode()).digest()[:8], "little")
        assert derived not in (seed, seed % 2**32)


# ------------------------------------------------------------------------ (e) hanging, sleeping, flooding
STALLS = {
    "spins in round 1": "def row_strategy(history):\n    while True:\n        pass\n",
    "sleeps forever in round 3": (
        "import time\ndef row_strategy(history):\n    if len(history) == 2:\n"
        "        time.sleep(10**6)\n    return MOVE\n"
    ),
    "sleeps forever at import": "import time\ntime.sleep(10**6)\ndef row_strategy(history):\n    return MOVE\n",
    "ignores signals and spins": (
        "import signal\nfor s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "def row_strategy(history):\n    while True:\n        pass\n"
    ),
    "floods its output forever": (
        "import os, sys\ndef row_strategy(history):\n    while True:\n"
        "        sys.stdout.write('x' * 65536)\n        os.write(2, b'y' * 65536)\n"
    ),
    "stops reading its input": (
        "import agent_link, time\n"
        "agent_link.AgentEnd.receive = lambda self: time.sleep(10**6)\n"
        "def row_strategy(history):\n    return MOVE\n"
    ),
}
STALL_GAMES = {
    "spins in round 1": ["battleOfSexes", "prisonersDilemma"],
    "sleeps forever in round 3": ["blotto", "prisonersDilemma"],
    "sleeps forever at import": ["blotto", "battleOfSexes"],
    "ignores signals and spins": ["battleOfSexes", "blotto"],
    "floods its output forever": ["battleOfSexes", "blotto"],
    "stops reading its input": ["prisonersDilemma", "blotto"],
}


@pytest.mark.parametrize("task_id, stall", [(game, stall) for stall, games in STALL_GAMES.items() for game in games])
def test_a_strategy_that_stalls_fails_within_the_deadlines(task_id, stall):
    task = with_deadlines(task_id, setup_s=6, round_s=3, game_s=20)
    started = time.monotonic()
    result = run(task, f"MOVE = {MOVE[task_id]}\n" + STALLS[stall])
    elapsed = time.monotonic() - started
    assert isinstance(result, EvaluationError), f"scored {result.value}"
    assert result.status in FAILED, failure_text(result)
    assert re.search(r"the strategy did not (start|answer round \d+).* within \d+s", str(result)), str(result)
    assert elapsed < 40, elapsed  # its deadline and the sandboxes' teardown, far within the 120s


def test_the_default_deadlines_fit_in_the_evaluation_timeout():
    """Setup and all rounds together end before the evaluation's own timeout, so a stalled
    strategy is reported by the evaluator (a named failure), not cut off by the sandbox."""
    module = engine()
    for task_id in GAMES:
        assert module.SETUP_TIMEOUT_S + module.GAME_TIMEOUT_S + 5 < load_task(task_id).evaluation.timeout_s


def test_a_bounded_flood_of_output_changes_nothing():
    source = textwrap.dedent("""\
        import os, sys
        for _ in range(200):
            sys.stdout.write("z" * 65536)
            os.write(2, b"w" * 65536)
        def row_strategy(history):
            return MOVE
        """)
    for task_id in ("battleOfSexes", "blotto"):
        result = run(task_id, f"MOVE = {MOVE[task_id]}\n" + source)
        assert isinstance(result, Score), failure_text(result)
        assert result.value == honest(task_id)


def test_an_error_text_that_is_no_valid_unicode_cannot_discard_the_episode(tmp_path):
    """A strategy whose error message holds a lone surrogate (sent as JSON's \\ud800 escape)
    once made the trajectory writer raise after the score was known: the episode ended `failed`
    and --resume played it again, so an agent could discard any episode it was losing. Now the
    character is written as U+FFFD and the episode is recorded, finished, like any other failure."""
    import warnings

    from researchgym.runs.runner import Method, RunConfig, Runner
    from researchgym.runs.store import Store
    from researchgym.runs.trajectory import load_trajectory

    config = RunConfig(
        tasks=["battleOfSexes"], methods=[Method("react", "support_models:Discarder")], seeds=[0], sandbox="bwrap"
    )
    run_dir = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert Runner(run_dir, config).run() == {"finished": 1}
        assert Runner.resume(run_dir).pending() == []
    (episode,) = Store(run_dir).episodes()
    assert episode["exit_status"] in FAILED and episode["final_score"] is None
    trajectory = load_trajectory(episode["trajectory"])
    validated = next(step for step in trajectory.steps if step["action"] == "validate")
    assert "lost \ufffd" in validated["observation"]
    assert trajectory.end is not None and trajectory.end["exit_status"] == episode["exit_status"]
