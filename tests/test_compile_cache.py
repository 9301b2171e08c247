"""The evaluators' compile cache: what one finished evaluation compiled, later ones find; nothing
else gets in (not the agent's code, not an evaluator that was stopped, not links or odd names)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from researchgym import compile_cache
from researchgym.compile_cache import CompileCache, entries, evaluator_digest
from researchgym.errors import EvaluationError, TaskConfigError
from researchgym.evaluation import evaluate
from researchgym.tasks.loader import load_task_file
from researchgym.tasks.registry import BUILTIN_DIR

AGENT_LINK = BUILTIN_DIR / "_shared" / "agent_link.py"

# A trusted evaluator that compiles one "program" (writes an entry into its cache folder) after
# noting what the folder already held, then asks the agent's code for a mode and its findings.
EVALUATOR = textwrap.dedent("""\
    import os, sys, time
    from agent_link import AgentLink, LinkError, report, report_error
    folder = os.environ.get("RESEARCHGYM_EVALUATOR_CACHE")
    found = sorted(os.listdir(folder)) if folder else None
    if folder:
        with open(os.path.join(folder, "jit_rollout-0123abcd-cache"), "wb") as handle:
            handle.write(b"compiled" * 100)
    link = AgentLink.open([sys.executable, "server.py"])
    try:
        answer = link.ask({}, timeout_s=20, limit=1 << 16, doing="answer")
    except LinkError as exc:
        report_error(str(exc)); sys.exit(1)
    if answer.get("mode") == "hang":
        time.sleep(600)
    report({"Score": 1.0, "found": found, "agent_saw": answer.get("saw")})
    """)

SERVER = textwrap.dedent("""\
    from agent_link import AgentEnd
    end = AgentEnd.from_stdio()
    from solution import reply
    while end.receive_json() is not None:
        end.send_json(reply())
    """)

HONEST = "def reply():\n    return {'mode': 'normal', 'saw': []}\n"
HANGS = "def reply():\n    return {'mode': 'hang', 'saw': []}\n"


def write_cached_task(root: Path, compile_cache_line: str = "compile_cache: true", timeout_s: int = 120) -> Path:
    task = root / "cached"
    for folder in ("eval", "starter"):
        (task / folder).mkdir(parents=True, exist_ok=True)
    (task / "eval" / "agent_link.py").write_text(AGENT_LINK.read_text())
    (task / "eval" / "evaluate.py").write_text(EVALUATOR)
    (task / "eval" / "server.py").write_text(SERVER)
    (task / "starter" / "solution.py").write_text(HONEST)
    (task / "task.yaml").write_text(
        textwrap.dedent(f"""\
        id: cached
        name: Cached
        domain: testing
        description: Reply.
        starter_files:
          - src: starter/solution.py
        evaluation:
          command: python evaluate.py
          files:
            - src: eval/evaluate.py
            - src: eval/agent_link.py
          agent_code:
            command: python server.py
            files:
              - src: eval/server.py
              - src: eval/agent_link.py
          {compile_cache_line}
          timeout_s: {timeout_s}
        metric: {{name: Score, direction: maximize}}
        submission:
          artefacts: [solution.py]
        limits: {{max_steps: 5, command_timeout_s: 10, training_timeout_s: 30}}
        """)
    )
    return task / "task.yaml"


@pytest.fixture
def shared(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "shared-cache"
    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", str(folder))
    return folder


def score(task, tmp_path: Path, solution: str, sandbox: str = "bwrap"):
    workspace = tmp_path / f"ws-{os.urandom(4).hex()}"
    workspace.mkdir()
    (workspace / "solution.py").write_text(solution)
    return evaluate(task, workspace, split="validation", seed=3, sandbox=sandbox)


@pytest.mark.filterwarnings("ignore:the 'local' sandbox does not isolate")
@pytest.mark.parametrize("sandbox", ["bwrap", "local"])
def test_what_a_finished_evaluation_compiled_the_next_one_finds(shared, tmp_path, sandbox):
    task = load_task_file(write_cached_task(tmp_path / "tasks"))
    first = score(task, tmp_path, HONEST, sandbox)
    assert first.metrics["found"] == []
    folder = shared / evaluator_digest(task)
    assert sorted(os.listdir(folder)) == ["jit_rollout-0123abcd-cache"]  # renamed into place, no leftovers
    second = score(task, tmp_path, HONEST, sandbox)
    assert second.metrics["found"] == ["jit_rollout-0123abcd-cache"]
    assert (folder / "jit_rollout-0123abcd-cache").read_bytes() == b"compiled" * 100


# The agent's code looks for the cache (its variables, the shared folder by its host path, the
# evaluator's copy where that sandbox sees it, any file named like an entry), then tries to plant one.
POKE = textwrap.dedent("""\
    import os
    FOLDERS = ({shared!r}, {shared!r} + "/{digest}", "/run/researchgym-compile-cache")
    def reply():
        saw = [v for v in ("RESEARCHGYM_EVALUATOR_CACHE", "RESEARCHGYM_COMPILE_CACHE") if os.environ.get(v)]
        saw += [folder for folder in FOLDERS if os.path.exists(folder)]
        for root, dirs, files in os.walk("/"):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev", "/usr")]
            saw.extend(os.path.join(root, name) for name in files if name.endswith("-cache"))
        for folder in FOLDERS:
            try:
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, "jit_rollout-0123abcd-cache"), "wb") as handle:
                    handle.write(b"poison")
            except OSError:
                pass
        return {{"mode": "normal", "saw": saw}}
    """)


def test_the_agents_code_neither_sees_nor_writes_the_cache(shared, tmp_path):
    task = load_task_file(write_cached_task(tmp_path / "tasks"))
    score(task, tmp_path, HONEST)  # the cache holds an entry now
    folder = shared / evaluator_digest(task)
    poke = POKE.format(shared=str(shared), digest=evaluator_digest(task))
    result = score(task, tmp_path, poke)
    assert result.metrics["agent_saw"] == []
    # Its writes land in its own sandbox's scratch space at most, never on the host.
    assert (folder / "jit_rollout-0123abcd-cache").read_bytes() == b"compiled" * 100
    assert sorted(os.listdir(folder)) == ["jit_rollout-0123abcd-cache"]
    assert result.metrics["found"] == ["jit_rollout-0123abcd-cache"]


def test_an_evaluator_stopped_before_it_reported_publishes_nothing(shared, tmp_path):
    task = load_task_file(write_cached_task(tmp_path / "tasks", timeout_s=15))
    with pytest.raises(EvaluationError) as caught:
        score(task, tmp_path, HANGS)
    assert caught.value.status == "evaluation_timeout"
    assert list(entries(shared / evaluator_digest(task))) == []


def test_off_turns_it_off(tmp_path, monkeypatch):
    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", "off")
    monkeypatch.setenv("RESEARCHGYM_CACHE", str(tmp_path / "cache-root"))
    task = load_task_file(write_cached_task(tmp_path / "tasks"))
    assert score(task, tmp_path, HONEST).metrics["found"] is None  # no folder handed over
    assert not (tmp_path / "cache-root").exists()


def test_a_task_asking_for_none_gets_none(shared, tmp_path):
    task = load_task_file(write_cached_task(tmp_path / "tasks", compile_cache_line="compile_cache: false"))
    assert score(task, tmp_path, HONEST).metrics["found"] is None
    assert not shared.exists()


def test_the_cache_needs_the_agents_code_in_a_sandbox_of_its_own(tmp_path):
    path = write_cached_task(tmp_path / "tasks")
    text = path.read_text()
    start = text.index("  agent_code:")
    path.write_text(text[:start] + text[text.index("  compile_cache:") :])
    with pytest.raises(TaskConfigError, match="compile_cache: true needs agent_code"):
        load_task_file(path)


def test_each_evaluator_has_its_own_folder(tmp_path):
    task = load_task_file(write_cached_task(tmp_path / "tasks"))
    before = evaluator_digest(task)
    (tmp_path / "tasks" / "cached" / "eval" / "evaluate.py").write_text(EVALUATOR + "\n# changed\n")
    assert evaluator_digest(task) != before
    assert evaluator_digest(
        task.model_copy(
            update={"evaluation": task.evaluation.model_copy(update={"command": "python evaluate.py --other"})}
        )
    ) != evaluator_digest(task)


def test_only_plain_files_with_plain_names_are_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_cache, "MAX_ENTRY_BYTES", 100)
    source = tmp_path / "evaluator"
    (source / "autotune" / "deeper" / "deepest").mkdir(parents=True)
    (source / "jit_step-aa-cache").write_bytes(b"x" * 10)
    (source / "autotune" / "fusion-1.textproto").write_bytes(b"y")
    (source / "autotune" / "deeper" / "kept").write_bytes(b"z")
    (source / "autotune" / "deeper" / "deepest" / "too-deep").write_bytes(b"z")
    (source / "big-cache").write_bytes(b"x" * 101)
    (source / ".hidden").write_bytes(b"x")
    (source / "bad name").write_bytes(b"x")
    (source / "link-cache").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_bytes(b"secret")
    os.mkfifo(source / "fifo-cache")
    assert dict(entries(source)) == {
        "autotune/deeper/kept": 1,
        "autotune/fusion-1.textproto": 1,
        "jit_step-aa-cache": 10,
    }
    cache = CompileCache(tmp_path / "shared")
    assert cache.publish(source) == 3
    assert sorted(str(p.relative_to(cache.folder)) for p in cache.folder.rglob("*") if p.is_file()) == [
        "autotune/deeper/kept",
        "autotune/fusion-1.textproto",
        "jit_step-aa-cache",
    ]
    assert cache.publish(source) == 0  # nothing new


def test_staged_entries_are_copies(tmp_path):
    cache = CompileCache(tmp_path / "shared")
    cache.folder.mkdir()
    (cache.folder / "jit_step-aa-cache").write_bytes(b"original")
    staged = tmp_path / "staged"
    staged.mkdir()
    assert cache.stage(staged) == 1
    (staged / "jit_step-aa-cache").write_bytes(b"changed")
    assert (cache.folder / "jit_step-aa-cache").read_bytes() == b"original"
    # An entry already held is never replaced by a later evaluation's file of that name.
    assert cache.publish(staged) == 0
    assert (cache.folder / "jit_step-aa-cache").read_bytes() == b"original"


def test_a_full_folder_drops_its_oldest_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_cache, "MAX_FOLDER_BYTES", 250)
    cache = CompileCache(tmp_path / "shared")
    cache.folder.mkdir()
    for age, name in enumerate(["old-cache", "middle-cache", "new-cache"]):
        (cache.folder / name).write_bytes(b"x" * 80)
        os.utime(cache.folder / name, (1000 + age, 1000 + age))
    source = tmp_path / "evaluator"
    source.mkdir()
    (source / "incoming-cache").write_bytes(b"y" * 80)
    assert cache.publish(source) == 1
    assert sorted(os.listdir(cache.folder)) == ["incoming-cache", "middle-cache", "new-cache"]


def test_the_shared_folder_lives_in_the_researchgym_cache_unless_named(tmp_path, monkeypatch):
    monkeypatch.delenv("RESEARCHGYM_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("RESEARCHGYM_CACHE", str(tmp_path))
    assert compile_cache.shared_root() == tmp_path / "compile-cache"
    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", str(tmp_path / "elsewhere"))
    assert compile_cache.shared_root() == tmp_path / "elsewhere"
    for value in ("off", "OFF", "0", "false", "none"):
        monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", value)
        assert compile_cache.shared_root() is None


def test_doctor_reports_the_cache_and_a_folder_it_cannot_write(tmp_path, monkeypatch):
    from researchgym.doctor import check_compile_cache

    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", str(tmp_path / "cache"))
    (finding,) = check_compile_cache()
    assert finding.ok and "0 evaluator(s)" in finding.detail
    cache = CompileCache(tmp_path / "cache" / "abc")
    source = tmp_path / "evaluator"
    source.mkdir()
    (source / "jit_step-aa-cache").write_bytes(b"x" * 2000)
    cache.publish(source)
    (finding,) = check_compile_cache()
    assert finding.ok and "1 evaluator(s), 1 programs" in finding.detail
    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", "off")
    (finding,) = check_compile_cache()
    assert finding.ok and finding.detail.startswith("off")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", str(blocked / "cache"))
    (finding,) = check_compile_cache()
    assert not finding.ok and "RESEARCHGYM_COMPILE_CACHE" in finding.hint
