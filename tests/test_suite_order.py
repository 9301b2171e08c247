"""The first pass of `make test` hands whole test files to its workers longest first
(tests/conftest.py): the order must keep each file's tests together and in their own order."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from conftest import longest_files_first, recorded_seconds


def _items(*nodeids: str) -> list:
    return [SimpleNamespace(path=Path("tests") / nodeid.split("::")[0], nodeid=nodeid) for nodeid in nodeids]


def test_whole_files_run_longest_first_each_in_its_own_order():
    items = _items("a.py::one", "b.py::one", "a.py::two", "c.py::one", "b.py::two", "c.py::two")
    ordered = longest_files_first(items, {"a.py": 5.0, "b.py": 50.0, "c.py": 20.0})
    assert [item.nodeid for item in ordered] == [
        "b.py::one",
        "b.py::two",
        "c.py::one",
        "c.py::two",
        "a.py::one",
        "a.py::two",
    ]


def test_a_file_without_a_record_counts_as_the_median_and_ties_keep_the_collection_order():
    items = _items("new.py::t", "short.py::t", "long.py::t", "middle.py::t", "other.py::t")
    seconds = {"short.py": 1.0, "middle.py": 10.0, "long.py": 100.0, "other.py": 10.0}
    ordered = [item.nodeid for item in longest_files_first(items, seconds)]
    assert ordered == ["long.py::t", "new.py::t", "middle.py::t", "other.py::t", "short.py::t"]
    assert [item.nodeid for item in longest_files_first(items, {})] == [item.nodeid for item in items]


def test_the_recorded_seconds_cover_the_files_of_the_parallel_pass():
    seconds = recorded_seconds()
    assert seconds, "tests/durations.json is missing or unreadable"
    files = {path.name for path in Path(__file__).parent.glob("test_*.py")}
    assert set(seconds) <= files, f"durations.json names files that no longer exist: {sorted(set(seconds) - files)}"
    assert all(value >= 0 for value in seconds.values())
