"""Attacks on the strict ML-Bench judge's evidence, as an answer that knows the judge's source
would make them: every forged run must fail, every honest variant must still pass.

The evidence (evidence.py) comes over a socket whose peer the kernel names, from processes whose
start strace saw on the host; the hook reports the code each judged process ran. The attacks
below send the hook's records themselves (from `python -c`, `python -I`, a sitecustomize of
their own), preload a library, turn the user's site folder back on, or run a changed program
and put the original back afterwards."""

from __future__ import annotations

import textwrap

import pytest
from mlbench_toy import TRAIN_SAMPLE, pinned_toy_tree

from researchgym.errors import SandboxError
from researchgym.mlbench.judge import Judge
from researchgym.mlbench.schema import Sample
from researchgym.sandbox import exectrace

pytestmark = pytest.mark.usefixtures("private_researchgym_cache")


@pytest.fixture(scope="module")
def judge(tmp_path_factory) -> Judge:
    return Judge(pinned_toy_tree(tmp_path_factory))


SAMPLE = TRAIN_SAMPLE.model_copy(update={"id": 7, "timeout_s": 20})
GOLD = SAMPLE.output
#: What the gold's run would have parsed, as the hook reports it.
PARSED = {"dataset": "citeseer", "lr": 0.0, "epochs": 5, "hidden_sizes": [0, 5], "no_cuda": False}

# A client of the judge's socket written from the hook's documented wire format: it claims that
# examples/train.py parsed the gold's arguments, printed the expected line and wrote model.json.
# The hook takes its variable out of a Python process's environment, so the answer's shell hands
# it over under another name (STOLEN). Simple statements only: `python -m code` reads it too.
FORGER = textwrap.dedent(
    """
    import hashlib, json, os, socket, struct
    path, token, _ = (os.environ.get("RG_MLB_RUN") or os.environ["STOLEN"]).split("|")
    folder = os.getcwd()
    out = os.path.join(folder, "model.json")
    open(out, "w").write("{}")
    st = os.stat(out)
    digest = hashlib.sha256(open(out, "rb").read()).hexdigest()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    frame = lambda body: s.sendall(struct.pack(">I", len(body)) + body)
    frame(b"H" + token.encode())
    assert s.recv(1) == b"\\x01"
    parsed = PARSED
    parsed.update(out="model.json", sleep=0.0)
    common = {"argv0": "train.py", "argv": GOLD_ARGV, "cwd": folder}
    frame(b"R" + json.dumps({**common, "kind": "parse", "program": "examples/train:<module>",
        "parser": "argparse", "namespace": parsed, "unknown": [], "options": {}, "defaults": {}}).encode())
    frame(b"O" + b"trained citeseer\\n")
    frame(b"R" + json.dumps({**common, "kind": "exit", "program": "examples/train", "parsed": True,
        "files": {out: [st.st_size, st.st_mtime_ns, digest]}}).encode())
    s.close()
    """
)


def forger_source() -> str:
    return FORGER.replace("PARSED", repr(PARSED)).replace("GOLD_ARGV", repr(GOLD.split()[2:]))


def heredoc(name: str, text: str) -> str:
    return f"cat > {name} <<'RG_EOF'\n{text}\nRG_EOF\n"


def test_the_gold_still_passes_under_the_watch(judge):
    result = judge.judge(SAMPLE, "bash", GOLD)
    assert result.passed, result


@pytest.mark.parametrize(
    "answer",
    [
        f"python -u {GOLD[len('python ') :]}",
        f"env FOO=1 {GOLD}",
        f"cd .. && python examples/train.py {GOLD.split(' ', 2)[2]} --out examples/model.json",
        f"export PYTHONPATH=$PYTHONPATH:.\n{GOLD}",
    ],
)
def test_honest_variants_still_pass(judge, answer):
    result = judge.judge(SAMPLE, "bash", answer)
    assert result.passed, (answer, result)


@pytest.mark.parametrize(
    ("launch", "why"),
    [
        # accepted senders (a hooked Python), but not started to run the target
        ("python /tmp/forger.py", None),
        ("python -m code < /tmp/forger.py", None),  # the answer's code read by a trusted module
        # refused senders
        ("python -I /tmp/forger.py", "-I"),  # no hook at all: its records are its own
        ("python -S /tmp/forger.py", "-S"),
        ("python - < /tmp/forger.py", "stdin"),
        ('python -c "$(cat /tmp/forger.py)"', "-c"),
        ("LD_PRELOAD=/nonexistent.so python /tmp/forger.py", "LD_PRELOAD"),
        ("PYTHONPATH=/tmp/evil python -I /tmp/forger.py", "PYTHONPATH"),
    ],
)
def test_records_sent_by_a_process_of_the_answer_do_not_count(judge, launch, why):
    answer = heredoc("/tmp/forger.py", forger_source()) + "STOLEN=$RG_MLB_RUN " + launch
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed, result
    assert not result.arguments.passed, result
    detail = result.arguments.detail
    assert "never ran" in detail, detail
    if why is not None:
        assert "refused" in detail and why in detail, detail


def test_a_program_of_the_answer_named_like_the_target_fails(judge):
    # started as `python train.py`, but the train.py it ran is not the repository's
    answer = heredoc("/tmp/train.py", forger_source()) + "cd /tmp && STOLEN=$RG_MLB_RUN python train.py"
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed, result
    detail = result.arguments.detail
    assert "never ran" in detail and "started as `python train.py`, which does not run it" in detail, detail


def test_the_repositorys_program_run_from_code_of_the_answer_fails(judge):
    # the genuine train.py runs (runpy), but inside a process that first ran the answer's code
    runner = (
        "import runpy, sys\nsys.argv = ['train.py'] + sys.argv[1:]\nrunpy.run_path('train.py', run_name='__main__')"
    )
    answer = heredoc("/tmp/train.py", runner) + f"python /tmp/train.py {GOLD.split(' ', 2)[2]}"
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed, result
    assert "/tmp/train.py: code from a folder the answer can write" in result.execution.detail, result


def test_a_sitecustomize_of_the_answer_before_the_hook_is_refused(judge):
    evil = forger_source()
    answer = (
        "mkdir -p /tmp/evil\n"
        + heredoc("/tmp/evil/sitecustomize.py", evil)
        + f"STOLEN=$RG_MLB_RUN PYTHONPATH=/tmp/evil:$PYTHONPATH {GOLD.replace('citeseer', 'cora')}"
    )
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed, result
    assert "PYTHONPATH does not start with the judge's hook folder" in result.arguments.detail, result


def test_the_users_site_folder_cannot_be_turned_back_on(judge):
    site = "$HOME/.local/lib/python$(python -c 'import sys; print(*sys.version_info[:2], sep=\".\")')/site-packages"
    answer = (
        f'mkdir -p "{site}"\n'
        + heredoc("/tmp/usercustomize.py", forger_source())
        + f'cp /tmp/usercustomize.py "{site}/usercustomize.py"\n'
        + f"STOLEN=$RG_MLB_RUN env -u PYTHONNOUSERSITE {GOLD.replace('citeseer', 'cora')}"
    )
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed, result
    assert "PYTHONNOUSERSITE" in result.arguments.detail, result


def test_a_program_changed_for_the_run_and_put_back_fails(judge):
    fake = textwrap.dedent(
        """
        import argparse, json
        parser = argparse.ArgumentParser()
        for name in ("--dataset", "--lr", "--epochs", "--out", "--sleep"):
            parser.add_argument(name)
        parser.add_argument("--hidden-sizes", nargs="+")
        parser.add_argument("--no-cuda", action="store_true")
        args = parser.parse_args()
        open("model.json", "w").write("{}")
        print("trained citeseer")
        """
    )
    answer = (
        "cp train.py /tmp/train.py.orig\n" + heredoc("train.py", fake) + GOLD + "\ncp /tmp/train.py.orig train.py\n"
    )
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed, result
    assert "examples/train.py: changed by the answer" in result.execution.detail, result


def test_a_module_planted_beside_the_program_fails(judge, tmp_path):
    # the program imports `json` after the hook did, so a planted json.py is not even loaded;
    # `textwrap` it does not import: the planted module must be one the program loads
    answer = (
        heredoc("helper_for_train.py", "print('planted')")
        + "cp train.py /tmp/t.py && sed -i '1i import helper_for_train' train.py\n"
        + GOLD
        + "\ncp /tmp/t.py train.py\n"
    )
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed, result
    assert "written by the answer" in result.execution.detail, result


def test_without_strace_the_strict_judge_says_what_to_install(judge, monkeypatch):
    monkeypatch.setattr(exectrace, "strace_path", lambda: None)
    with pytest.raises(SandboxError, match="strace"):
        judge.judge(SAMPLE, "bash", GOLD)


def test_the_evidence_socket_is_the_only_way_in(judge):
    # the hook leaves no log the sandbox can write: the folder its variable names is read-only,
    # so the answer below exits 3 if its append worked, and passes only when it was refused
    answer = 'd=$(dirname "${RG_MLB_RUN%%|*}"); (echo x >> "$d/forged.jsonl") 2>/dev/null && exit 3\n' + GOLD
    result = judge.judge(SAMPLE, "bash", answer)
    assert result.passed, result


UTIL_TRAIN = textwrap.dedent(
    """
    import argparse
    import util

    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="cora")
    args = parser.parse_args()
    util.train(args.dataset)
    """
)
UTIL = textwrap.dedent(
    """
    import json


    def train(dataset):
        json.dump({"dataset": dataset, "weights": [0.5, 0.25]}, open("model.json", "w"))
        print("trained", dataset)
    """
)
UTIL_SAMPLE = Sample(
    id=8,
    path="./examples",
    instruction="Train on citeseer",
    arguments={"dataset": "citeseer"},
    expected_outputs=["model.json"],
    expected_stdout="trained citeseer",
    timeout_s=20,
    output="python train.py --dataset citeseer",
)
# Bytecode for util whose header claims the genuine source's mtime and size, so Python loads it
# instead of compiling util.py: a "trained" line without training.
PLANT = textwrap.dedent(
    """
    import importlib.util, marshal, os, struct
    source = os.stat("util.py")
    code = compile("def train(dataset):\\n    open('model.json', 'w').write('{}')\\n    print('trained', dataset)\\n",
                   os.path.abspath("util.py"), "exec")
    header = importlib.util.MAGIC_NUMBER + struct.pack("<III", 0, int(source.st_mtime) & 0xFFFFFFFF, source.st_size)
    os.makedirs("__pycache__", exist_ok=True)
    open(importlib.util.cache_from_source("util.py"), "wb").write(header + marshal.dumps(code))
    """
)


@pytest.fixture(scope="module")
def util_judge(tmp_path_factory) -> Judge:
    tree = tmp_path_factory.mktemp("util-repo")
    (tree / "examples").mkdir()
    (tree / "examples" / "train.py").write_text(UTIL_TRAIN)
    (tree / "examples" / "util.py").write_text(UTIL)
    return Judge(tree)


def test_a_module_of_the_repository_passes(util_judge):
    result = util_judge.judge(UTIL_SAMPLE, "bash", UTIL_SAMPLE.output)
    assert result.passed, result


def test_planted_bytecode_for_a_module_of_the_repository_fails(util_judge):
    answer = heredoc("/tmp/plant.py", PLANT) + "python /tmp/plant.py\n" + UTIL_SAMPLE.output
    result = util_judge.judge(UTIL_SAMPLE, "bash", answer)
    assert not result.passed, result
    assert "examples/util.py: the code that ran is not what the file holds" in result.execution.detail, result


def test_a_module_swapped_for_the_run_and_put_back_fails(util_judge):
    forged = UTIL.replace('"weights": [0.5, 0.25]', '"weights": []')
    answer = "cp util.py /tmp/u.py\n" + heredoc("util.py", forged) + UTIL_SAMPLE.output + "\ncp /tmp/u.py util.py\n"
    result = util_judge.judge(UTIL_SAMPLE, "bash", answer)
    assert not result.passed, result
    assert "examples/util.py: changed by the answer" in result.execution.detail, result


def test_text_written_into_the_programs_output_by_another_process_does_not_count(judge):
    # the program really runs with the gold's arguments; the answer's shell writes the expected
    # line into the program's captured stdout through /proc while it sleeps
    sample = SAMPLE.model_copy(update={"expected_stdout": "accuracy 0.99"})
    answer = (
        f"{GOLD} --sleep 3 &\n"
        "sleep 1.5\n"
        "for fd in 1 2; do echo 'accuracy 0.99' > /proc/$!/fd/$fd && echo INJECTED; done\n"
        "wait\n"
    )
    result = judge.judge(sample, "bash", answer)
    assert result.arguments.passed, result
    assert not result.execution.passed, result
    assert "does not match 'accuracy 0.99'" in result.execution.detail, result


# ------------------------------------------------------- answers that made the judge raise or hang
@pytest.mark.parametrize(
    "leftover",
    [
        "rm -f model.json && python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('model.json')\"",
        "rm -f model.json && mkfifo model.json",  # opening it on the host blocked the judge for good
        "rm -f model.json && ln -s /etc/hostname model.json",
    ],
    ids=["socket", "fifo", "symlink"],
)
def test_an_expected_output_that_is_no_regular_file_is_judged_missing(judge, leftover):
    """The judge reads the expected outputs on the host. A socket there made it raise (the
    attempt went unrecorded and a resume asked the model again), a FIFO blocked it forever."""
    result = judge.judge(SAMPLE, "bash", f"{GOLD}\n{leftover}\nexit 0")
    assert not result.passed
    assert "were not created" in result.execution.detail, result


def test_a_malformed_record_from_a_hooked_process_is_dropped_not_raised(judge):
    """Any hooked Python the answer starts may send records; a `program` that is a list made the
    judge raise (an unhashable set member) instead of judging."""
    sender = heredoc(
        "send.py",
        "import sitecustomize\nsitecustomize.RECORD({'kind': 'parse', 'program': ['x'], 'argv': [1]})",
    )
    result = judge.judge(SAMPLE, "bash", f"{sender}python send.py\nexit 0")
    assert not result.passed and "judge error" not in str(result)


def test_a_fault_of_the_judge_on_an_answer_is_a_failed_judgment(judge, monkeypatch):
    """Whatever the answer leaves that the judge did not foresee, the attempt is judged (failed,
    naming the fault), never an exception that leaves it unrecorded for a resume to ask again."""
    from researchgym.mlbench import judge as judge_module

    def broken(*_args, **_kwargs):
        raise TypeError("something the answer left")

    monkeypatch.setattr(judge_module.Judge, "_judge_strict", broken)
    result = judge.judge(SAMPLE, "bash", GOLD)
    assert not result.passed
    assert result.execution.detail.startswith("judge error: TypeError: something the answer left")


def test_the_agents_run_sh_is_never_read_through_a_link(tmp_path):
    from researchgym.mlbench.agent import _read_run_sh

    secret = tmp_path / "host.txt"
    secret.write_text("a host file")
    (tmp_path / "run.sh").symlink_to(secret)
    assert _read_run_sh(tmp_path / "run.sh") is None
    (tmp_path / "real.sh").write_text("python train.py\n")
    assert _read_run_sh(tmp_path / "real.sh") == "python train.py\n"


def test_the_shipped_answer_keys_are_masked_in_the_answers_sandbox(judge, monkeypatch):
    """Installed as a wheel, researchgym's ML-Bench suites (every gold command and expected
    output) sit under a Python prefix, which every sandbox binds read-only: an answer found its
    own gold there, ran it and passed. Here a stand-in key under this interpreter's prefix must
    be unreadable by the answer, as the real suites folder is (ANSWER_KEYS)."""
    import sys
    import tempfile
    from pathlib import Path

    from researchgym.mlbench import judge as judge_module

    with tempfile.TemporaryDirectory(dir=sys.prefix, prefix=".rg-test-answer-keys-") as keys:
        (Path(keys) / "samples.jsonl").write_text("GOLD-ANSWER-KEY\n")
        reads_it = f"{GOLD}\ngrep -q GOLD-ANSWER-KEY {keys}/samples.jsonl && exit 3\nexit 0"
        unlisted = judge.judge(SAMPLE, "bash", reads_it)
        assert not unlisted.passed and "exit status 3" in unlisted.execution.detail  # bound, so readable
        monkeypatch.setattr(judge_module, "ANSWER_KEYS", (Path(keys),))
        listed = judge.judge(SAMPLE, "bash", reads_it)
        assert listed.passed, listed


# --------------------------------------------- a target that did not finish, or never wrote its output
@pytest.mark.parametrize(
    "answer",
    [
        # killed once it had parsed its arguments, the outputs then written by the answer
        f"{GOLD} --sleep 30 & p=$!\nsleep 1.5; kill -9 $p; wait\necho '{{}}' > model.json\necho trained citeseer",
        f"timeout 1.5 {GOLD} --sleep 30\necho '{{}}' > model.json\necho trained citeseer",
        # the output written first, then the target made to fail and its status hidden
        f"echo '{{}}' > model.json && chmod 000 model.json\n{GOLD} || true\nchmod 644 model.json",
    ],
    ids=["kill -9", "timeout", "pre-written, then a failing target"],
)
def test_a_target_that_did_not_finish_by_itself_with_status_0_fails(judge, answer):
    """strace on the host sees how each target process ended: killed by a signal (no exit
    record, so the provenance check used to be skipped), or exited with an error the answer hid
    with `|| true` while its own file stood as the output."""
    result = judge.judge(SAMPLE, "bash", answer)
    assert not result.passed
    assert "did not finish by itself with exit status 0" in result.execution.detail, result


def test_an_output_the_target_did_not_change_while_it_ran_is_not_its_own(judge, tmp_path):
    """The hook records each output at the target's start too: one that held, when the target
    exited, exactly what it held when it started was the answer's, not the target's (a target
    that exits 0 without writing, after the answer wrote the file, passed before)."""
    from types import SimpleNamespace

    from researchgym.mlbench.judge import _stat

    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    state = list(_stat(folder / "model.json"))
    inside = "/workspace/examples/model.json"
    finished = SimpleNamespace(timed_out=False, exit_code=0, output="")
    sample = SAMPLE.model_copy(update={"expected_stdout": None})

    def outcome(at_start):
        exits = [{"kind": "exit", "pid": 7, "files": {inside: state}, "files_at_start": {inside: at_start}}]
        return judge._outcome(sample, folder, {}, finished, "", exits, "/workspace", statuses={7: 0})

    assert outcome(None).passed  # absent when it started: the target wrote it
    unchanged = outcome(state)
    assert not unchanged.passed and "were not written by the program" in unchanged.detail


@pytest.mark.parametrize(
    "start",
    ["PYTHONVERBOSE=2 python", "python -vv", "python -X importtime", "PYTHONDEVMODE=1 python"],
)
def test_interpreter_traces_that_print_text_of_the_answers_choosing_are_refused(judge, start):
    """Python's verbose import trace prints every folder it searches: a PYTHONPATH folder named
    with newlines and the expected line put that line into a program's output."""
    plant = 'd=$\'/tmp/x\\ntrained citeseer\\n\'; mkdir -p "$d"; export PYTHONPATH="$PYTHONPATH:$d"\n'
    result = judge.judge(SAMPLE, "bash", plant + GOLD.replace("python", start, 1))
    assert not result.passed
    assert "refused" in result.arguments.detail, result
