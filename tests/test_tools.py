"""The agent-computer interface, every command run inside a real bwrap sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

import researchgym
from researchgym.agents.scripted import ScriptedAgent
from researchgym.runs.episode import run_episode
from researchgym.tools import command_docs, render_command_docs

WINDOW = 10


@pytest.fixture
def env():
    environment = researchgym.make(
        "battleOfSexes", window=WINDOW, footer=False, limits={"max_steps": 1000, "command_timeout_s": 20}
    )
    environment.reset(seed=0)
    yield environment
    environment.close()


def write(env, name: str, content: str | bytes) -> Path:
    path = env.workspace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def run(env, action: str) -> str:
    observation, *_ = env.step(action)
    return observation


def numbered(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, n + 1))


# ----------------------------------------------------------------------- viewing
def test_open_shows_a_numbered_window_with_context(env):
    write(env, "f.txt", numbered(30))
    out = run(env, "open f.txt")
    assert out.splitlines()[0] == "[File: /home/agent/workspace/f.txt (30 lines total)]"
    assert " 1:line 1" in out and "10:line 10" in out and "11:line 11" not in out
    assert "(20 more lines below)" in out and "more lines above" not in out
    assert env.tool_state()["open_file"] == "/home/agent/workspace/f.txt"


def test_open_at_a_line_centres_it_and_clamps_at_the_edges(env):
    write(env, "f.txt", numbered(30))
    middle = run(env, "open f.txt 15")
    assert "(9 more lines above)" in middle and "15:line 15" in middle and "(11 more lines below)" in middle
    end = run(env, "open f.txt 30")
    assert "(20 more lines above)" in end and "30:line 30" in end and "below" not in end
    start = run(env, "open f.txt 1")
    assert " 1:line 1" in start and "above" not in start
    past = run(env, "open f.txt 31")  # clamped, as in MLGym
    assert "30:line 30" in past and "showing line 30 instead" in past


def test_scrolling_moves_by_window_minus_two_and_stops_at_edges(env):
    write(env, "f.txt", numbered(25))
    run(env, "open f.txt")
    down = run(env, "scroll_down")
    assert "(8 more lines above)" in down and " 9:line 9" in down and "18:line 18" in down
    down = run(env, "scroll_down")
    assert "16:line 16" in down and "25:line 25" in down and "below" not in down
    assert "already at the end of the file" in run(env, "scroll_down")
    up = run(env, "scroll_up")
    assert " 8:line 8" in up and "17:line 17" in up
    run(env, "scroll_up")
    assert "already at the start of the file" in run(env, "scroll_up")


def test_repeated_scrolling_suggests_search(env):
    write(env, "f.txt", numbered(100))
    run(env, "open f.txt")
    outputs = [run(env, "scroll_down") for _ in range(3)]
    assert "search_file" not in outputs[0] and "search_file" in outputs[2]


def test_goto_needs_an_open_file_and_a_valid_line(env):
    assert "No file is open" in run(env, "goto 3")
    write(env, "f.txt", numbered(50))
    run(env, "open f.txt")
    out = run(env, "goto 40")
    assert "40:line 40" in out and "(34 more lines above)" in out
    assert "whole number" in run(env, "goto forty")


def test_directories_binary_and_missing_files_are_refused(env):
    (env.workspace / "folder").mkdir()
    write(env, "blob.bin", b"\x00\x01\x02binary")
    write(env, "latin.txt", "caf\xe9".encode("latin-1") * 10)
    assert "is a directory" in run(env, "open folder")
    assert "binary file" in run(env, "open blob.bin")
    assert "not UTF-8 text" in run(env, "open latin.txt")
    out = run(env, "open nope.txt")
    assert "not found" in out and "find_file" in out
    assert env.step("open nope.txt")[4]["exit_code"] == 1


def test_create_makes_and_opens_a_one_empty_line_file_once(env):
    out = run(env, "create new.py")
    assert "(1 lines total)" in out and (env.workspace / "new.py").read_text() == "\n"
    assert "already exists" in run(env, "create new.py")
    assert "does not exist" in run(env, "create missing/dir/x.py")


def test_a_100k_line_file_opens_at_any_line_and_shows_only_its_window(env):
    """How fast it opens is measured by benchmarks/tools_latency.py, not asserted here (a busy
    machine would make a wall-clock bound flaky)."""
    write(env, "big.txt", numbered(100_000))
    for line in (1, 50_000, 99_999, 100_000):
        out = run(env, f"open big.txt {line}")
        assert f"{line}:line {line}" in out and "(100000 lines total)" in out
        shown = [row for row in out.splitlines() if row.split(":", 1)[0].isdigit()]
        assert len(shown) <= WINDOW + 1, out


# ----------------------------------------------------------------------- editing
PY = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\nprint(area(2))\n"


def test_valid_edit_changes_exactly_those_lines(env):
    path = write(env, "shapes.py", PY)
    run(env, "open shapes.py")
    out = run(env, "edit 4:5\ndef area(radius):\n    return math.pi * radius ** 2\nend_of_edit")
    assert "File updated" in out
    expected = PY.replace(
        "def area(r):\n    return math.pi * r * r", "def area(radius):\n    return math.pi * radius ** 2"
    )
    assert path.read_text() == expected


def test_edit_introducing_an_undefined_name_is_refused_byte_identical(env):
    path = write(env, "shapes.py", PY)
    before = path.read_bytes()
    run(env, "open shapes.py")
    out, _, _, _, info = env.step("edit 5:5\n    return pi * r * r\nend_of_edit")
    assert "undefined name 'pi'" in out and "NOT applied" in out
    assert "This is how the file would have looked" in out and "return pi * r * r" in out
    assert "This is the original" in out and "return math.pi * r * r" in out
    assert info["exit_code"] == 1 and path.read_bytes() == before


def test_edit_introducing_a_syntax_error_is_refused(env):
    path = write(env, "shapes.py", PY)
    before = path.read_bytes()
    run(env, "open shapes.py")
    out = run(env, "edit 4:4\ndef area(r)\nend_of_edit")
    assert "SyntaxError" in out and path.read_bytes() == before


def test_existing_errors_do_not_block_unrelated_edits(env):
    path = write(env, "old.py", "print(undefined_thing)\nx = 1\n")
    run(env, "open old.py")
    assert "File updated" in run(env, "edit 2:2\nx = 2\nend_of_edit")
    assert path.read_text() == "print(undefined_thing)\nx = 2\n"


def test_empty_edit_block_deletes_lines(env):
    path = write(env, "f.txt", numbered(5))
    run(env, "open f.txt")
    run(env, "edit 2:4\nend_of_edit")
    assert path.read_text() == "line 1\nline 5\n"


def test_insert_at_the_top_and_after_the_last_line(env):
    path = write(env, "f.txt", numbered(3))
    run(env, "open f.txt")
    run(env, "insert 0\nfirst\nend_of_insert")
    run(env, "insert 4\nlast\nend_of_insert")
    assert path.read_text() == "first\nline 1\nline 2\nline 3\nlast\n"
    assert "added the new lines at its end" in run(env, "insert 9\nx\nend_of_insert")  # clamped, as in MLGym
    assert path.read_text() == "first\nline 1\nline 2\nline 3\nlast\nx\n"


def test_edit_ranges_are_checked(env):
    write(env, "f.txt", numbered(3))
    run(env, "open f.txt")
    assert "need 1 <= START <= END" in run(env, "edit 3:2\nx\nend_of_edit")
    assert "need 1 <= START <= END" in run(env, "edit 0:1\nx\nend_of_edit")
    assert "must be line numbers" in run(env, "edit a:b\nx\nend_of_edit")
    assert (env.workspace / "f.txt").read_text() == numbered(3)


def test_edits_on_read_only_files_are_refused(env):
    before = (env.workspace / "target.py").read_bytes()  # a read-only starter file
    run(env, "open target.py")
    out = run(env, "edit 1:1\n# changed\nend_of_edit")
    assert "read-only" in out and (env.workspace / "target.py").read_bytes() == before


def test_edit_without_terminator_runs_nothing(env):
    path = write(env, "f.txt", numbered(3))
    run(env, "open f.txt")
    out, _, _, _, info = env.step("edit 1:1\nrm f.txt")
    assert "no line `end_of_edit`" in out and info["exit_code"] is None
    assert path.exists() and path.read_text() == numbered(3)


def test_edit_without_a_block_is_refused(env):
    write(env, "f.txt", numbered(3))
    run(env, "open f.txt")
    assert "needs its text on the following lines" in run(env, "true; edit 1:1 < /dev/null")


def test_unicode_and_crlf_files_keep_their_encoding_and_line_endings(env):
    path = write(env, "notes.txt", "")
    path.write_bytes("héllo wörld ✓\r\nsecond\r\nthird\r\n".encode())
    out = run(env, "open notes.txt")
    assert "1:héllo wörld ✓" in out and "\r" not in out
    run(env, "edit 2:2\nzweite – ✓\nend_of_edit")
    assert path.read_bytes() == "héllo wörld ✓\r\nzweite – ✓\r\nthird\r\n".encode()
    assert "Line 1:héllo wörld ✓" in run(env, "search_file wörld")


def test_heredocs_and_blocks_pass_through_intact(env):
    path = write(env, "f.sh", "echo one\n")
    text = "quotes ' \" $HOME `x` \\n and <<EOF and end_of_edit_not_quite"
    run(env, "open f.sh")
    run(env, f"edit 1:1\n{text}\nend_of_edit")
    assert path.read_text() == text + "\n"


def test_syntax_errors_are_rejected_before_anything_runs(env):
    out, _, _, _, info = env.step("touch ran.txt; if then fi")
    assert "syntax error" in out and info["exit_code"] == 2
    assert not (env.workspace / "ran.txt").exists()


# ------------------------------------------------------------------------ search
def test_search_file_and_search_dir(env):
    write(env, "src/a.py", "alpha = 1\nbeta = alpha\n")
    write(env, "src/b.py", "gamma = 3\n")
    write(env, "src/data.bin", b"\x00alpha")
    out = run(env, "search_dir alpha src")
    assert 'Found 2 matches for "alpha" in src:' in out and "src/a.py (2 matches)" in out
    assert "data.bin" not in out and "b.py" not in out
    assert 'No matches found for "delta"' in run(env, "search_dir delta")
    run(env, "open src/a.py")
    out = run(env, "search_file alpha")
    assert "Line 1:alpha = 1" in out and "Line 2:beta = alpha" in out
    assert "search_file TERM FILE" not in out


def test_search_caps_ask_to_narrow(env):
    for i in range(105):
        write(env, f"many/f{i}.txt", "needle\n")
    write(env, "long.txt", "needle\n" * 150)
    assert "more than 100 files" in run(env, "search_dir needle many") and "Narrow" in run(
        env, "search_dir needle many"
    )
    assert "more than 100 lines" in run(env, "search_file needle long.txt")
    assert "more than 100 files" in run(env, "find_file '*.txt' many")


def test_find_file_with_wildcards(env):
    write(env, "pkg/model_a.py", "")
    write(env, "pkg/sub/model_b.py", "")
    write(env, "pkg/notes.md", "")
    out = run(env, "find_file 'model_?.py' pkg")
    assert "pkg/model_a.py" in out and "pkg/sub/model_b.py" in out and "notes.md" not in out
    assert "pkg/notes.md" in run(env, "find_file '*.md'")
    assert "No files found" in run(env, "find_file '*.rs' pkg")


def test_footer_shows_step_open_file_and_directory():
    env = researchgym.make("battleOfSexes", limits={"max_steps": 10})
    env.reset(seed=0)
    env.step("open strategy.py")
    obs, *_ = env.step("mkdir -p sub && cd sub")
    assert obs.endswith(
        "(Current step: 2, remaining: 8) (Open file: /home/agent/workspace/strategy.py) "
        "(Current directory: /home/agent/workspace/sub)"
    )
    env.close()


# ----------------------------------------------------------------- documentation
def test_generated_docs_cover_every_command_and_argument():
    docs = {doc.name: doc for doc in command_docs()}
    shipped = {p.name for p in (Path(researchgym.__file__).parent / "tools" / "bin").iterdir()}
    assert set(docs) == shipped
    assert {
        "open",
        "goto",
        "scroll_up",
        "scroll_down",
        "create",
        "edit",
        "insert",
        "search_dir",
        "search_file",
        "find_file",
        "validate",
        "submit",
    } <= shipped
    text = render_command_docs(command_docs())
    for doc in docs.values():
        assert doc.signature in text and doc.docstring in text
        for arg in doc.arguments:
            assert f"- {arg.name} (" in text
    assert docs["edit"].end_name == "end_of_edit" and docs["insert"].end_name == "end_of_insert"
    assert [a.name for a in docs["open"].arguments] == ["path", "line_number"]


# ------------------------------------------------------------ a scripted fix-up
BROKEN = '''import random


def row_strategy(history):
    """Return the row player's move."""
    if not history:
        return 0
    return choose(history)  # `choose` was never written
'''


def test_scripted_agent_fixes_a_broken_starter_and_beats_the_baseline(tmp_path):
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    original_reset = env.reset

    def reset_with_broken_starter(**kwargs):
        observation, info = original_reset(**kwargs)
        (env.workspace / "strategy.py").write_text(BROKEN)
        return observation, info

    env.reset = reset_with_broken_starter
    agent = ScriptedAgent(
        [
            "validate",  # fails: NameError in the strategy
            "open strategy.py",
            "edit 6:8\n    return 0\nend_of_edit",
            "validate",
            "submit",
        ],
        then_submit=False,
    )
    result = run_episode(env, agent, seed=4)
    assert result.scores[0]["status"] == "evaluation_format_error"
    assert result.exit_status == "submitted"
    baseline = researchgym.load_task("battleOfSexes").baseline_score
    assert result.final_score > baseline + 0.3
