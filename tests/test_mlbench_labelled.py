"""The strict ML-Bench judge against labelled answers of our own over the offline suite
(suites/offline/labelled_answers.jsonl): answers that never run the program (heredoc bodies,
untaken `true ||` branches, functions shadowing the program, touch/echo forging, outputs the
setup had made), extra behaviour-changing options and other scripts taking the same arguments
must fail; equivalent forms (paths after `cd ..`, `$PWD` paths, `timeout`/`nice`/`env`/`time`
prefixes, module vs console forms, option spellings) must pass. For Python tasks: output printed
from the answer's constants (exact-value forging), values only in dead code and answers that never
call the library fail; arguments given positionally or unpacked from a dict pass."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from researchgym.mlbench.data import load_samples, suite_dir
from researchgym.mlbench.llm import Repositories
from researchgym.mlbench.repos import suite_pins

pytest.importorskip("gensim", reason="the mlbench extra is not installed")
pytest.importorskip("sacrebleu", reason="the mlbench extra is not installed")
pytest.importorskip("spacy", reason="the mlbench extra is not installed")
pytest.importorskip("tokenizers", reason="the mlbench extra is not installed")
pytest.importorskip("sklearn", reason="the mlbench extra is not installed")

LABELLED = [
    json.loads(line)
    for line in (suite_dir("offline") / "labelled_answers.jsonl").read_text().splitlines()
    if line.strip()
]
SAMPLES = {s.key: s for s in load_samples("offline")}
CLASSES = {  # every class of issue #22, found in the reasons
    "fail": [
        "heredoc",
        "true ||",
        "shadows",
        "forg",
        "pre-existing output",
        "extra behaviour-changing",
        "different script",
        "wrong",
        "exact-value forging",
        "dead code",
    ],
    "pass": [
        "cd ..",
        "$PWD",
        "timeout",
        "nice",
        "env VAR",
        "time",
        "module form",
        "the gold command",
        "positionally",
        "unpacked with **",
        "printed from constants",
    ],
}


def test_the_labelled_answers_cover_every_class():
    assert len(LABELLED) >= 40
    assert all(row["sample"] in SAMPLES and row["label"] in ("pass", "fail") and row["reason"] for row in LABELLED)
    for label, needles in CLASSES.items():
        reasons = " ".join(row["reason"] for row in LABELLED if row["label"] == label)
        assert all(needle in reasons for needle in needles), (label, [n for n in needles if n not in reasons])
    counts = Counter(row["label"] for row in LABELLED)
    assert counts["pass"] >= 20 and counts["fail"] >= 20, counts


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_labelled_answer_gets_its_label():
    repos = Repositories(suite_pins("offline"))
    for name in {SAMPLES[row["sample"]].repo_name for row in LABELLED}:
        repos.judge(name)  # materialised once, before the judging threads

    def judged(row: dict) -> tuple[float, tuple | None]:
        sample = SAMPLES[row["sample"]]
        started = time.monotonic()
        judgment = repos.judge(sample.repo_name).judge(sample, row["language"], row["code"])
        wrong = (row["sample"], row["reason"], judgment.arguments.detail, judgment.execution.detail)
        return time.monotonic() - started, None if judgment.passed == (row["label"] == "pass") else wrong

    # two at a time, as `researchgym mlbench llm --workers 2` judges: each answer has its own
    # sandbox and copy of the repository, and the judge's program mostly waits on it
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(judged, LABELLED))
    seconds = [s for s, _ in results]
    wrong = [w for _, w in results if w is not None]
    print(f"judged {len(LABELLED)} labelled answers, p50 {statistics.median(seconds):.2f} s per answer")
    assert not wrong, wrong
