"""A sample's setup runs once per judge: what it left in the workspace is captured and laid over
the next answer's fresh copy exactly (files, modes, links, folders, removals); a setup that wrote
outside the workspace runs again every time, and an answer's damage never reaches the next one."""

from __future__ import annotations

import os
import stat

import pytest
from mlbench_toy import TRAIN_SAMPLE, pinned_toy_tree

from researchgym.mlbench import setupcache
from researchgym.mlbench.judge import Judge
from researchgym.mlbench.setupcache import SetupCapture, tree_state

pytestmark = pytest.mark.usefixtures("private_researchgym_cache")


def test_a_capture_replays_every_kind_of_change(tmp_path):
    pristine, done = tmp_path / "pristine", tmp_path / "done"
    for root in (pristine, done):
        (root / "pkg" / "old").mkdir(parents=True)
        (root / "pkg" / "old" / "gone.txt").write_text("bye")
        (root / "pkg" / "kept.py").write_text("x = 1\n")
        (root / "pkg" / "was_file").write_text("a file before")
    before = tree_state(done)
    # what a setup might do
    (done / "pkg" / "old" / "gone.txt").unlink()
    (done / "pkg" / "old").rmdir()
    (done / "pkg" / "kept.py").write_text("x = 2  # changed\n")
    (done / "pkg" / "was_file").unlink()
    (done / "pkg" / "was_file").mkdir()
    (done / "data" / "deep").mkdir(parents=True)
    (done / "data" / "deep" / "corpus.bin").write_bytes(bytes(range(256)) * 10)
    (done / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(done / "run.sh", 0o750)
    os.symlink("data/deep/corpus.bin", done / "latest")
    (done / "locked").mkdir()
    (done / "locked" / "inside.txt").write_text("written before the folder was locked")
    os.chmod(done / "locked", 0o555)

    capture = SetupCapture.between(done, before, tree_state(done))
    capture.apply(pristine)
    try:
        assert {p: e[0] for p, e in tree_state(pristine).items()} == {p: e[0] for p, e in tree_state(done).items()}
        assert (pristine / "pkg" / "kept.py").read_text() == "x = 2  # changed\n"
        assert (pristine / "data" / "deep" / "corpus.bin").read_bytes() == bytes(range(256)) * 10
        assert stat.S_IMODE(os.stat(pristine / "run.sh").st_mode) == 0o750
        assert os.readlink(pristine / "latest") == "data/deep/corpus.bin"
        assert (pristine / "locked" / "inside.txt").read_text() == "written before the folder was locked"
        assert stat.S_IMODE(os.stat(pristine / "locked").st_mode) == 0o555
        assert not (pristine / "pkg" / "old").exists() and (pristine / "pkg" / "was_file").is_dir()
    finally:
        os.chmod(done / "locked", 0o755)
        os.chmod(pristine / "locked", 0o755)


def test_an_unchanged_tree_captures_nothing_and_a_huge_one_is_not_held(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("a")
    state = tree_state(tmp_path)
    assert SetupCapture.between(tmp_path, state, tree_state(tmp_path)) == SetupCapture()
    (tmp_path / "big.bin").write_bytes(b"x" * 2048)
    assert SetupCapture.between(tmp_path, state, tree_state(tmp_path)).files["big.bin"][0] == b"x" * 2048
    monkeypatch.setattr(setupcache, "MAX_CAPTURE_BYTES", 2047)
    assert SetupCapture.between(tmp_path, state, tree_state(tmp_path)) is None


@pytest.fixture(scope="module")
def toy_tree(tmp_path_factory):
    return pinned_toy_tree(tmp_path_factory)


# The answer runs the gold only when the setup's data is there, as the setup left it.
NEEDS_DATA = 'test "$(cat data/seed.txt)" = 42 && test -L data/latest && ' + TRAIN_SAMPLE.output


def test_the_setup_runs_once_and_its_result_is_laid_down_for_every_answer(toy_tree):
    sample = TRAIN_SAMPLE.model_copy(
        update={"setup": "mkdir -p data && echo 42 > data/seed.txt && ln -s seed.txt data/latest\n"}
    )
    judge = Judge(toy_tree)
    first = judge.judge(sample, "bash", NEEDS_DATA)
    assert first.passed, first
    assert list(judge._setups) == [(sample.key, sample.setup)]  # kept for the next answer
    # an answer that wrecks the setup's data and the program leaves nothing for the next answer
    wreck = judge.judge(sample, "bash", "rm -rf data && echo broken > train.py && " + TRAIN_SAMPLE.output)
    assert not wreck.passed
    again = judge.judge(sample, "bash", NEEDS_DATA)
    assert again.passed, again


def test_a_setup_that_writes_outside_the_workspace_runs_again_every_time(toy_tree):
    sample = TRAIN_SAMPLE.model_copy(update={"setup": "echo 42 > ~/seed.txt\n"})
    judge = Judge(toy_tree)
    answer = 'test "$(cat ~/seed.txt)" = 42 && ' + TRAIN_SAMPLE.output
    for _ in range(2):  # HOME dies with each sandbox: only a rerun of the setup puts the file back
        result = judge.judge(sample, "bash", answer)
        assert result.passed, result
    assert judge._setups == {(sample.key, sample.setup): None}  # nothing captured: it reruns, unmeasured
