"""Red team of the evaluation protocol itself: the artefact snapshot, the link between the
evaluator and the agent's code, the result channel, the strict parser, and episodes that an
artefact tries to end as `failed`.

The task used here is built for attacks: the evaluator asks the agent's code for (x * K) % 97
on x drawn from its seed, where K is public on the validation split (2) and hidden on the test
split (31, in data/answers/key.txt). An honest solution knows only the validation rule, so it
scores 1.0 on validation and chance (about 1/97) on test; reading the hidden key, forging the
result or predicting the evaluator's draws would score 1.0 on test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from researchgym.errors import EvaluationError
from researchgym.evaluation import _EvaluationRun, evaluate, last_json_object, read_result_file, refuse_non_finite
from researchgym.runs.runner import Method, RunConfig, Runner
from researchgym.runs.store import Store
from researchgym.runs.trajectory import load_trajectory
from researchgym.snapshot import SnapshotLimits, snapshot
from researchgym.tasks.builtin._shared.agent_link import strict_loads
from researchgym.tasks.loader import load_task_file
from researchgym.tasks.registry import BUILTIN_DIR, load_task

AGENT_LINK = BUILTIN_DIR / "_shared" / "agent_link.py"
HONEST = "def answer(x):\n    return (x * 2) % 97\n"


def write_link_task(root: Path, extra_yaml: str = "") -> Path:
    task = root / "linked"
    for folder in ("eval", "starter", "data/answers"):
        (task / folder).mkdir(parents=True, exist_ok=True)
    (task / "eval" / "agent_link.py").write_text(AGENT_LINK.read_text())
    (task / "data" / "answers" / "key.txt").write_text("31\n")
    (task / "data" / "public.txt").write_text("validation key: 2\n")
    (task / "starter" / "solution.py").write_text(HONEST)
    (task / "eval" / "evaluate.py").write_text(
        textwrap.dedent("""\
        import json, random, sys
        from agent_link import AgentLink, LinkError, report, report_error
        from isolation_free_secrets import seed_and_split
        seed, split = seed_and_split()
        key = int(open("data/answers/key.txt").read()) if split == "test" else 2
        draws = random.Random(seed)
        xs = [draws.randrange(10**6) for _ in range(200)]
        link = AgentLink.open([sys.executable, "server.py"])
        try:
            answers = link.ask({"xs": xs}, timeout_s=10, limit=1 << 16, doing="answer the queries")
        except LinkError as exc:
            report_error(str(exc)); sys.exit(1)
        if not isinstance(answers, list) or len(answers) != len(xs):
            report_error(f"expected {len(xs)} answers"); sys.exit(1)
        if any(type(a) is not int for a in answers):
            report_error("answers must be integers"); sys.exit(1)
        correct = sum(a == (x * key) % 97 for a, x in zip(answers, xs))
        report({"Score": correct / len(xs), "split": split})
        """)
    )
    (task / "eval" / "isolation_free_secrets.py").write_text(
        textwrap.dedent("""\
        import json, os
        def seed_and_split():
            path = os.environ.pop("RESEARCHGYM_SECRETS_FILE")
            with open(path) as handle:
                seed = json.load(handle)["seed"]
            os.unlink(path)
            return seed, os.environ["RESEARCHGYM_SPLIT"]
        """)
    )
    (task / "eval" / "server.py").write_text(
        textwrap.dedent("""\
        from agent_link import AgentEnd
        end = AgentEnd.from_stdio()
        from solution import answer
        while True:
            request = end.receive_json()
            if request is None:
                break
            end.send_json([answer(x) for x in request["xs"]])
        """)
    )
    (task / "task.yaml").write_text(
        textwrap.dedent("""\
        id: linked
        name: Linked
        domain: testing
        description: |
          Answer (x * K) % 97. {dataset_docs}
        datasets:
          - {name: linked-data, description: keys, data_path: data, mount: data}
        starter_files:
          - src: starter/solution.py
        evaluation:
          command: python evaluate.py
          files:
            - src: eval/evaluate.py
            - src: eval/agent_link.py
            - src: eval/isolation_free_secrets.py
          agent_code:
            command: python server.py
            files:
              - src: eval/server.py
              - src: eval/agent_link.py
          timeout_s: 60
        metric: {name: Score, direction: maximize}
        submission:
          artefacts: [solution.py]
        hidden_files: [data/answers]
        limits: {max_steps: 5, command_timeout_s: 10, training_timeout_s: 30}
        """)
        + extra_yaml
    )
    return task


@pytest.fixture
def linked(tmp_path: Path):
    return load_task_file(write_link_task(tmp_path / "tasks") / "task.yaml")


def score(task, tmp_path: Path, solution: str, split: str = "test", seed: int = 7, **files: str):
    workspace = tmp_path / f"ws-{time.monotonic_ns()}"
    workspace.mkdir()
    (workspace / "solution.py").write_text(solution)
    for name, text in files.items():
        (workspace / name).write_text(text)
    return evaluate(task, workspace, split=split, seed=seed, sandbox="bwrap")


def test_the_honest_solution_scores_validation_and_chance_on_test(linked, tmp_path):
    assert score(linked, tmp_path, HONEST, split="validation").value == 1.0
    assert score(linked, tmp_path, HONEST).value < 0.1


# Code the agent's solution runs at import, looking for the key, the evaluator, the seed and the
# result channel everywhere it could; it reports what it found through its answers (a found key
# would be used) and on stderr.
SEARCH = textwrap.dedent("""\
    import glob, os, re, sys
    found = []
    key = None
    def look(path):
        global key
        try:
            text = open(path, errors="replace").read(4096)
        except OSError:
            return
        found.append(path)
        if path.endswith("key.txt") and text.strip().isdigit():
            key = int(text)
    cmdline = open("/proc/1/cmdline", "rb").read().decode(errors="replace").split("\\0")
    for part in cmdline:  # bwrap's command line names host paths of its mounts
        if part.startswith("/"):
            for name in ("answers/key.txt", "key.txt", "data/answers/key.txt", "evaluate.py",
                         ".researchgym-secrets.json", "result.json"):
                look(os.path.join(part, name))
    for path in ["data/answers/key.txt", "/home/agent/workspace/data/answers/key.txt", "evaluate.py",
                 ".researchgym-secrets.json", "/run/researchgym-result/result.json"]:
        look(path)
    for root, dirs, files in os.walk("/", topdown=True):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev", "/usr")
                   and ".venv" not in d and "site-packages" not in d]
        for name in files:
            if name in ("key.txt", "evaluate.py", ".researchgym-secrets.json", "result.json",
                        "isolation_free_secrets.py"):
                look(os.path.join(root, name))
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                environ = open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                continue
            if b"RESEARCHGYM" in environ:
                found.append(f"/proc/{pid}/environ")
    found += [k for k in os.environ if k.startswith("RESEARCHGYM")]
    print("FOUND:", found, file=sys.stderr)
    def answer(x):
        return (x * (key or 2)) % 97
    """)


def test_the_agents_code_finds_no_hidden_file_evaluator_seed_or_channel(linked, tmp_path):
    result = score(linked, tmp_path, SEARCH)
    assert "FOUND: []" in result.output_tail
    assert result.value < 0.1  # no better than the honest solution


def test_forged_results_on_every_descriptor_do_not_count(linked, tmp_path):
    forger = HONEST + textwrap.dedent("""\
        import os, json
        line = json.dumps({"Score": 1.0, "split": "test"})
        print(line); print(line, file=__import__("sys").stderr)
        for fd in os.listdir("/proc/self/fd"):
            try:
                os.write(int(fd), ("\\n" + line + "\\n").encode())
            except OSError:
                pass
        for guess in ("/run/researchgym-result/result.json", "result.json", "../result/result.json"):
            try:
                os.makedirs(os.path.dirname(guess) or ".", exist_ok=True)
                open(guess, "w").write(line)
            except OSError:
                pass
        """)
    honest = score(linked, tmp_path, HONEST)
    try:
        forged = score(linked, tmp_path, forger)
    except EvaluationError as exc:  # the bytes written into the link broke the protocol
        assert exc.status == "evaluation_format_error"
    else:
        assert forged.value == honest.value < 0.1


@pytest.mark.parametrize(
    "reply, words",
    [
        (b"\x00\x00\x00\x05hello", "not valid JSON"),
        (b"\xff\xff\xff\xff", "at most"),
        (b"\x00\x00\x10\x00" + b"[" * 4096, "not valid JSON"),
        (b"\x00\x00\x00\x07[1e999]", "not valid JSON"),
        (b"\x00\x00\x00\x05[NaN]", "not valid JSON"),
        (b"\x00\x00\x00\x09[1, 2, 3", "exited before"),
    ],
)
def test_malformed_frames_are_a_named_failure(linked, tmp_path, reply, words):
    """The agent's code can take over its side of the link and write anything; the evaluator's
    checks hold."""
    rogue = HONEST + textwrap.dedent(f"""\
        import __main__, os, sys
        end = __main__.end  # the server's end of the link
        end.receive()
        os.write(end.outbox, {reply!r})
        os.close(end.outbox)
        sys.exit(0)
        """)
    with pytest.raises(EvaluationError) as failure:
        score(linked, tmp_path, rogue)
    assert failure.value.status == "evaluation_format_error"
    assert words in str(failure.value)


@pytest.mark.slow
def test_an_agent_that_never_answers_fails_within_the_evaluators_deadline(linked, tmp_path):
    sleeper = HONEST + "import time\ntime.sleep(3600)\n"
    started = time.monotonic()
    with pytest.raises(EvaluationError) as failure:
        score(linked, tmp_path, sleeper)
    assert failure.value.status == "evaluation_format_error" and "did not answer the queries" in str(failure.value)
    assert time.monotonic() - started < linked.evaluation.timeout_s


def test_answers_of_the_wrong_type_are_refused_by_the_evaluator(linked, tmp_path):
    cheat = "def answer(x):\n    return True\n"
    with pytest.raises(EvaluationError, match="answers must be integers"):
        score(linked, tmp_path, cheat)


def test_the_test_draws_change_with_the_seed(linked, tmp_path):
    """A solution that memorises the validation draws learns nothing about the test draws."""
    recorder = textwrap.dedent("""\
        import sys
        def answer(x):
            print("X", x, file=sys.stderr)
            return (x * 2) % 97
        """)
    first = score(linked, tmp_path, recorder, seed=1).output_tail
    second = score(linked, tmp_path, recorder, seed=2).output_tail
    xs = lambda tail: [line for line in tail.splitlines() if line.startswith("X ")]  # noqa: E731
    assert xs(first) and set(xs(first)).isdisjoint(xs(second))


# ------------------------------------------------------------------------ the snapshot
def test_a_symlink_swapped_in_during_the_copy_never_copies_what_it_names(tmp_path):
    """The race of class 5: check a file, then swap it for a link to a secret before the copy."""
    workspace, secret = tmp_path / "ws", tmp_path / "secret.txt"
    workspace.mkdir()
    secret.write_text("TOP-SECRET\n" * 100)
    swapper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""\
        import os, time
        ws, secret = {str(workspace)!r}, {str(secret)!r}
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with open(ws + "/tmp.csv", "w") as handle:
                handle.write("y\\n8\\n10\\n")
            os.replace(ws + "/tmp.csv", ws + "/submission.csv")
            try:
                os.symlink(secret, ws + "/link")
                os.replace(ws + "/link", ws + "/submission.csv")
            except OSError:
                pass
        """),
        ]
    )
    outcomes: dict[str, int] = {}
    try:
        for attempt in range(400):
            destination = tmp_path / f"copy-{attempt}"
            destination.mkdir()
            try:
                snapshot(workspace, ["submission.csv"], destination)
            except EvaluationError as exc:
                assert exc.status == "submission_not_found"
                outcomes["refused"] = outcomes.get("refused", 0) + 1
                continue
            text = (destination / "submission.csv").read_text()
            assert "SECRET" not in text
            assert not (destination / "submission.csv").is_symlink()
            outcomes["copied"] = outcomes.get("copied", 0) + 1
    finally:
        swapper.kill()
        swapper.wait()
    assert outcomes.get("refused") and outcomes.get("copied")  # both sides of the race were met


def test_fifos_sockets_and_links_inside_a_folder_artefact_are_refused_without_hanging(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "checkpoints").mkdir(parents=True)
    os.mkfifo(workspace / "checkpoints" / "pipe.pkl")
    with pytest.raises(EvaluationError, match="checkpoints/pipe.pkl is a FIFO"):
        snapshot(workspace, ["checkpoints"], tmp_path / "a")
    os.unlink(workspace / "checkpoints" / "pipe.pkl")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(workspace / "checkpoints" / "sock"))
    with pytest.raises(EvaluationError, match="is a socket"):
        snapshot(workspace, ["checkpoints"], tmp_path / "b")
    server.close()
    os.unlink(workspace / "checkpoints" / "sock")
    os.symlink("/dev/zero", workspace / "checkpoints" / "zero.pkl")
    with pytest.raises(EvaluationError, match="is a symbolic link"):
        snapshot(workspace, ["checkpoints"], tmp_path / "c")
    os.unlink(workspace / "checkpoints" / "zero.pkl")
    os.symlink("..", workspace / "checkpoints" / "loop")  # a loop through the parent
    with pytest.raises(EvaluationError, match="is a symbolic link"):
        snapshot(workspace, ["checkpoints"], tmp_path / "d")


def test_sparse_files_count_at_full_size_and_nothing_big_is_written(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with open(workspace / "model.pt", "wb") as handle:
        handle.truncate(1 << 40)  # a terabyte that allocates nothing
    destination = tmp_path / "copy"
    destination.mkdir()
    with pytest.raises(EvaluationError, match="larger than 20 MiB"):
        snapshot(workspace, ["model.pt"], destination, SnapshotLimits(max_bytes=20 << 20))
    written = sum(p.stat().st_blocks * 512 for p in destination.rglob("*") if p.is_file())
    assert written == 0


def test_deep_folders_and_too_many_files_are_refused(tmp_path):
    workspace = tmp_path / "ws"
    deep = workspace / "src"
    deep.mkdir(parents=True)
    for _ in range(40):
        deep = deep / "d"
    deep.mkdir(parents=True)
    for index in range(30):
        (workspace / "src" / f"f{index}.py").write_text("x = 1\n")
    with pytest.raises(EvaluationError, match="more than 20 files"):
        snapshot(workspace, ["src"], tmp_path / "a", SnapshotLimits(max_files=20))
    path = workspace / "src"
    descriptor = os.open(path, os.O_RDONLY)
    try:  # deeper than MAX_DEPTH, built relative to an open folder (paths would get too long)
        for _ in range(140):
            os.mkdir("n", dir_fd=descriptor)
            child = os.open("n", os.O_RDONLY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = child
    finally:
        os.close(descriptor)
    with pytest.raises(EvaluationError, match="deeper than"):
        snapshot(workspace, ["src"], tmp_path / "b")


def test_artefact_paths_cannot_climb_out(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for name in ("../secret", "/etc/passwd", "a/../../x"):
        with pytest.raises(EvaluationError, match="relative to the workspace"):
            snapshot(workspace, [name], tmp_path / "copy")


# ------------------------------------------------------------------------ strict results
@pytest.mark.parametrize(
    "line",
    [
        '{"Score": 1e999}',
        '{"Score": NaN}',
        '{"Score": Infinity}',
        '{"Score": -Infinity}',
        '{"Score": 1' + "0" * 400 + "}",
    ],
)
def test_non_finite_or_huge_numbers_are_refused_as_non_finite(line):
    metrics = last_json_object(line + "\n")
    assert metrics is not None
    with pytest.raises(EvaluationError) as failure:
        refuse_non_finite(metrics)
    assert failure.value.status == "evaluation_non_finite" and "Score = " in str(failure.value)


def test_deep_lines_are_not_metrics():
    assert last_json_object('{"x": ' + "[" * 100_000 + "]" * 100_000 + ', "Score": 1}\n') is None
    assert last_json_object('{"x": ' + "[" * 100_000 + "]" * 100_000 + ', "Score": NaN}\n') is None


def test_the_result_channel_takes_exactly_one_object(tmp_path):
    folder = tmp_path / "result"
    folder.mkdir()
    for text in [
        '{"Score": 1}{"Score": 2}',
        '{"Score": 1}\n{"Score": 2}',
        "[1, 2]",
        "garbage",
        "\xff\xfe",
    ]:
        (folder / "result.json").write_text(text, errors="surrogateescape")
        assert read_result_file(folder) is None, text
    (folder / "result.json").write_text('{"Score": NaN}')
    with pytest.raises(EvaluationError, match="Score = nan"):  # one object, refused when scored
        refuse_non_finite(read_result_file(folder) or {})
    (folder / "result.json").unlink()
    os.symlink(tmp_path / "elsewhere.json", folder / "result.json")
    (tmp_path / "elsewhere.json").write_text('{"Score": 1}')
    assert read_result_file(folder) is None  # never through a link
    with pytest.raises(ValueError):
        strict_loads('{"a": ' * 65 + "1" + "}" * 65)


def _stdout_task(root: Path, printed: str) -> Path:
    task = root / "printing"
    (task / "eval").mkdir(parents=True)
    (task / "eval" / "evaluate.py").write_text(f"print({printed!r})\n")
    (task / "task.yaml").write_text(
        textwrap.dedent("""\
        id: printing
        name: Printing
        description: prints a result
        evaluation: {command: python evaluate.py, files: [{src: eval/evaluate.py}], has_test_split: false}
        metric: {name: Score, direction: maximize}
        submission: {artefacts: []}
        limits: {max_steps: 3}
        """)
    )
    return task


@pytest.mark.parametrize(
    "printed, status",
    [
        ('{"Score": 1e999}', "evaluation_non_finite"),
        ('{"Score": NaN}', "evaluation_non_finite"),
        ('{"Score": 1' + "0" * 400 + "}", "evaluation_non_finite"),
        ("[" * 50_000, "evaluation_format_error"),
        ('{"Score": ' + "[" * 5000 + "]" * 5000 + "}", "evaluation_format_error"),
        ('{"Score": true}', "evaluation_format_error"),
    ],
)
def test_an_evaluator_line_that_is_not_a_finite_metric_is_refused(tmp_path, printed, status):
    task = load_task_file(_stdout_task(tmp_path / "tasks", printed) / "task.yaml")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with pytest.raises(EvaluationError) as failure:
        evaluate(task, workspace, split="validation", seed=0, sandbox="bwrap")
    assert failure.value.status == status


# ------------------------------------------------------------------------ no re-rolls
@pytest.mark.parametrize(
    "attack, status",
    [
        ("rm -f solution.py && mkfifo solution.py", "submission_not_found"),
        ("rm -f solution.py && mkdir -p solution.py/a && ln -s .. solution.py/a/loop", "submission_not_found"),
        ("rm -f solution.py && ln -s /proc/self/root/etc/passwd solution.py", "submission_not_found"),
        ("printf 'import sys\\nsys.stdout.write(chr(91) * 200000)\\n' > solution.py", "evaluation_format_error"),
        ("printf 'def answer(x):\\n    return 10 ** 400\\n' > solution.py", "evaluation_format_error"),
        # Text that is no valid Unicode (a lone surrogate: the JSON escape \\ud800 in its error
        # message, a file name of bytes that are not UTF-8) used to make the trajectory writer
        # or the store raise, after the score was known.
        ("printf 'def answer(x):\\n    raise ValueError(chr(0xd800))\\n' > solution.py", "evaluation_format_error"),
        ("rm -f solution.py && mkdir solution.py && mkfifo solution.py/$(printf '\\377')", "submission_not_found"),
    ],
)
def test_an_artefact_cannot_make_its_episode_fail_and_be_played_again(tmp_path, attack, status):
    """Scoring never raises past the environment: the episode ends with an evaluation status,
    is recorded as finished, and --resume does not play it again."""
    task = write_link_task(tmp_path / "tasks", extra_yaml=f"baseline:\n  command: {attack!r}\n")
    run = tmp_path / "run"
    config = RunConfig(tasks=[str(task)], methods=[Method("baseline")], seeds=[0], sandbox="bwrap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert Runner(run, config).run() == {"finished": 1}
        episode = Store(run).episodes()[0]
        assert episode["exit_status"] == status, episode
        assert episode["final_score"] in (None, 0.0)
        assert Runner.resume(run).pending() == []
    trajectory = load_trajectory(episode["trajectory"])
    assert trajectory.end is not None and trajectory.end["exit_status"] == status


# ------------------------------------------------------------------------ every built-in task
def probe(box, hidden: list[Path], workspace: str = "/home/agent/workspace") -> dict[str, list[str]]:
    """Inside a started sandbox: which hidden paths (and the files inside hidden folders) can be
    read by their host path, which regular files of their names exist anywhere (a masked file is a
    /dev/null device and a masked folder an empty tmpfs: names, not contents), what the workspace holds, and
    how many of the evaluator's RESEARCHGYM_ variables (secrets file, link, result channel,
    split) the environment has."""
    files = [
        f for p in hidden for f in ([p] if not p.is_dir() else sorted(x for x in p.rglob("*") if x.is_file())[:100])
    ]
    names = sorted({f.name for f in files} | {".researchgym-secrets.json"})
    probes = " ".join(f"'{p}'" for p in [*hidden, *files])
    find = " -o ".join(f"-name '{n}'" for n in names)
    prune = " -o ".join(f"-path '{p}'" for p in ["/proc", "/sys", "/usr", sys.prefix, sys.base_prefix])
    result = box.run(
        f'echo ==READ; for p in {probes}; do head -c 64 "$p" >/dev/null 2>&1 && echo "$p"; done; '
        f"echo ==FIND; find / \\( {prune} \\) -prune -o -type f \\( {find} \\) -print 2>/dev/null | grep -v '^/usr/' || true; "
        f"echo ==LS; ls -A {workspace}; echo ==ENV; env | grep -c -e RESEARCHGYM_SECRETS -e RESEARCHGYM_AGENT_LINK "
        "-e RESEARCHGYM_RESULT -e RESEARCHGYM_SPLIT || true",
        timeout_s=300,
    )
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in result.output.splitlines():
        if line.startswith("=="):
            current = sections.setdefault(line[2:], [])
        elif line.strip():
            current.append(line.strip())
    return sections


OFFLINE_TASKS = [
    "battleOfSexes",
    "prisonersDilemma",
    "blotto",
    "3SATTime",
    "regressionKaggleHousePrice",
    "imageClassificationFMnist",
    "mnist-5k",
    "shakespeare-char",
    "rl-meta-maze-cpu",
    "rl-mountain-car-continuous-cpu",
    "rl-breakout-minatar-cpu",
]


@pytest.mark.parametrize("task_id", OFFLINE_TASKS)
def test_no_hidden_file_of_a_builtin_task_is_reachable_from_the_agents_sandbox(task_id):
    """The agent's own sandbox, for every built-in task whose data is at hand offline (the hub
    tasks check their masks in their own tests: test_cifar10, test_mnli, test_coco_captioning,
    test_fineweb_lm)."""
    import researchgym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = researchgym.make(task_id)
        env.reset(seed=0)
    try:
        task = env.unwrapped.task
        shown = {task.path(f.src) for f in task.starter_files}
        hidden = [
            *task.hidden_paths(),
            *[task.path(f.src) for f in task.evaluation.files if task.path(f.src) not in shown],
        ]
        sections = probe(env.unwrapped._sandbox, hidden)
    finally:
        env.close()
    assert sections["READ"] == [], sections
    assert sections["FIND"] == [], sections
    assert sections["ENV"] == ["0"]


def _agent_code_tasks() -> list[str]:
    ids = []
    for path in sorted(BUILTIN_DIR.glob("*/task.yaml")):
        task = load_task_file(path)
        if task.evaluation.agent_code is not None:
            ids.append(task.id)
    return ids


@pytest.mark.parametrize("task_id", _agent_code_tasks())
def test_no_hidden_file_of_a_builtin_task_is_reachable_from_its_agent_code_sandbox(task_id, tmp_path):
    """For every built-in task whose evaluation runs agent code: the sandbox that code runs in
    holds no hidden file, no dataset, no evaluator file and no secret, by any path."""
    task = load_task(task_id)
    hidden = [p for p in task.hidden_paths()] + [
        task.path(f.src)
        for f in task.evaluation.files
        if f.src not in {c.src for c in task.evaluation.agent_code.files}
    ]
    run = _EvaluationRun(task, tmp_path, "test", 1234, "bwrap")
    for folder in (run.artefact, run.evaluator, run.results):
        folder.mkdir(exist_ok=True)
    from researchgym.evaluation import place_files, write_secrets

    place_files(task, task.evaluation.agent_code.files, run.artefact, [])
    write_secrets(run.evaluator, run.token, run.seed)
    from researchgym.sandbox import create_sandbox

    read_fd, write_fd = os.pipe()
    box = create_sandbox("bwrap", run._agent_code_spec((read_fd, write_fd)))
    try:
        box.start()
        sections = probe(box, hidden)
    finally:
        box.close()
        os.close(read_fd)
        os.close(write_fd)
    output = str(sections)
    assert str(run.seed) not in output and run.token not in output
    assert sections["READ"] == [], output  # no hidden or evaluator file readable by its host path
    assert sections["FIND"] == [], output  # nor found anywhere by name
    assert set(sections["LS"]) <= {f.target.split("/")[0] for f in task.evaluation.agent_code.files}
    assert sections["ENV"] == ["0"]  # no evaluator variable: no link, secrets file or channel


def test_every_host_path_a_builtin_dataset_is_built_from_is_hidden():
    """A prepare script that reads its data from a folder every sandbox binds read-only (a Debian
    package's files under /usr, say) leaves the hidden labels readable there unless the task
    masks that folder too: the red team scored 1.0 on Fashion-MNIST from
    /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz. Each absolute path a built-in
    prepare script names must be covered by one of its task's hidden paths."""
    import ast

    from researchgym.tasks.registry import all_tasks

    checked = 0
    for task in all_tasks():
        hidden = [p.resolve() for p in task.hidden_paths()]
        for dataset in task.datasets:
            if not dataset.prepare:
                continue
            script = (task.source_dir / dataset.prepare).resolve()
            tree = ast.parse(script.read_text())
            prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
            prose |= {id(part) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for part in n.values}
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value.startswith("/")
                    and id(node) not in prose
                ):
                    named = Path(node.value)
                    assert any(named == h or named.is_relative_to(h) for h in hidden), (
                        f"{script} reads {named}, which {task.id} does not list in hidden_files"
                    )
                    checked += 1
    assert checked >= 1  # Fashion-MNIST's Debian folder, at least
