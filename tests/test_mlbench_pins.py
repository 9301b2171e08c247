"""The paper's repositories ship pinned: samples from the hub (or a file in its schema) find
their repository by name, GitHub address or ML-Bench's number, with no hand-written pins."""

from __future__ import annotations

import re

import pytest

from researchgym.cli import _mlbench_pin_file
from researchgym.mlbench.data import MLBenchError, suite_dir
from researchgym.mlbench.llm import Repositories
from researchgym.mlbench.repos import PAPER_PINS, load_pins, pin_for
from researchgym.mlbench.schema import Sample

#: ML-Bench's numbers for its repositories, as its execution script maps them to folders.
PAPER_IDS = {
    1: "dgl",
    2: "bert",
    3: "lavis",
    4: "if",
    5: "vid2vid",
    6: "esm",
    7: "open_clip",
    8: "Time-Series-Library",
    9: "External-Attention-pytorch",
    10: "PyTorch-GAN",
    11: "pytorch-image-models",
    13: "learning3d",
    14: "muzic",
    15: "Grounded-Segment-Anything",
}


def test_the_paper_pins_name_every_repository_at_a_full_commit():
    pins = load_pins(PAPER_PINS)
    assert {pin.github_id: name for name, pin in pins.items()} == PAPER_IDS
    for pin in pins.values():
        assert pin.source == "git" and re.fullmatch(r"[0-9a-f]{40}", pin.commit or ""), pin
        assert pin.github.startswith("https://github.com/") and pin.ref == pin.commit[:12]


@pytest.mark.parametrize(
    ("name", "github", "github_id"),
    [
        ("lavis", "", ""),  # the pin's own name
        ("LAVIS", "", ""),  # another case
        ("LAVIS", "https://github.com/salesforce/LAVIS", 3),  # as a hub sample says it
        ("whatever", "https://github.com/Salesforce/lavis.git/", ""),  # the address, however written
        ("whatever", "github.com/salesforce/LAVIS", ""),
        ("", "", 3),  # the number alone
        ("", "", "3"),
    ],
)
def test_a_sample_finds_its_pin(name, github, github_id):
    assert pin_for(load_pins(PAPER_PINS), name, github, github_id).name == "lavis"


def test_an_unknown_repository_is_named_with_the_pins_there_are():
    repositories = Repositories(load_pins(PAPER_PINS))
    sample = Sample(id=1, github="https://github.com/nobody/nothing", github_id=99, instruction="x", path=".")
    assert pin_for(repositories.pins, sample.repo_name, sample.github, sample.github_id) is None
    with pytest.raises(MLBenchError, match="no pinned repository named 'nothing'.*Time-Series-Library"):
        repositories.tree(sample)


def test_repositories_resolve_a_hub_sample_to_its_pin(tmp_path, monkeypatch):
    """A sample as the hub gives it (no `repo`, the address and the number) is materialised from
    the paper's pin, once per repository. GitHub is out of reach here, so the fetch itself is
    replaced: what is checked is which pin it is asked for."""
    pins = load_pins(PAPER_PINS)
    repositories = Repositories(pins)
    sample = Sample(id=5, github="https://github.com/thuml/Time-Series-Library", github_id=8, instruction="x", path=".")
    assert repositories.pin(sample) is pins["Time-Series-Library"]
    made = []
    monkeypatch.setattr("researchgym.mlbench.llm.materialize", lambda pin: made.append(pin) or tmp_path)
    assert repositories.tree(sample) == tmp_path and repositories.tree("time-series-library") == tmp_path
    assert made == [pins["Time-Series-Library"]]  # once, under the pin's name


def test_the_command_line_uses_the_paper_pins_for_samples_from_the_hub_or_a_file(tmp_path):
    mine = tmp_path / "pins.yaml"
    assert _mlbench_pin_file("hf:super-dainiu/ml-bench", None) == PAPER_PINS
    assert _mlbench_pin_file(str(tmp_path / "samples.jsonl"), None) == PAPER_PINS
    assert _mlbench_pin_file("hf:super-dainiu/ml-bench", mine) == mine
    assert _mlbench_pin_file("offline", None) == suite_dir("offline") / "repos.yaml"
