"""Shared fixtures: real sandboxes, real task folders written to disk, a TCP server on loopback."""

from __future__ import annotations

import json
import socket
import statistics
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

from researchgym.sandbox import Limits, SandboxSpec, create_sandbox


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture
def make_sandbox(workspace: Path):
    """Create started sandboxes that are closed after the test."""
    boxes = []

    def factory(provider: str = "bwrap", **spec_kwargs):
        limits = spec_kwargs.pop("limits", Limits(command_timeout_s=10))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            box = create_sandbox(
                provider, SandboxSpec(workspace=spec_kwargs.pop("workspace", workspace), limits=limits, **spec_kwargs)
            )
        box.start()
        boxes.append(box)
        return box

    yield factory
    for box in boxes:
        box.close()


@pytest.fixture
def loopback_server():
    """A TCP server on the host's 127.0.0.1 that answers 'hello' to anyone who connects."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    accepted: list[str] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append("connection")
            conn.sendall(b"hello\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


def write_task(root: Path, *, hidden_secret: bool = True, extra_yaml: str = "") -> Path:
    """A tiny CSV task: predict y = 2x. Hidden labels sit in the dataset folder and in eval/."""
    task = root / "tiny"
    (task / "data").mkdir(parents=True)
    (task / "eval").mkdir()
    (task / "starter").mkdir()
    (task / "data" / "train.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    (task / "data" / "test.csv").write_text("x\n4\n5\n")
    (task / "data" / "answers.csv").write_text("y\n8\n10\n")
    (task / "data" / "val_answers.csv").write_text("y\n8\n10\n")
    (task / "eval" / "secret.txt").write_text("TOP-SECRET-LABELS\n")
    (task / "starter" / "solve.py").write_text(
        textwrap.dedent("""\
        import csv
        rows = list(csv.DictReader(open("data/test.csv")))
        with open("submission.csv", "w") as out:
            out.write("y\\n")
            for row in rows:
                out.write(f"{int(row['x']) * 2}\\n")
        """)
    )
    (task / "eval" / "evaluate.py").write_text(
        textwrap.dedent("""\
        import csv, json, os, sys
        print("a stray warning line that must not break scoring")
        split = os.environ["RESEARCHGYM_SPLIT"]
        labels = "data/answers.csv" if split == "test" else "data/val_answers.csv"
        truth = [float(r["y"]) for r in csv.DictReader(open(labels))]
        assert open("secret.txt").read().startswith("TOP-SECRET")
        try:
            saw_test_labels = "10" in open("data/answers.csv").read()
        except OSError:
            saw_test_labels = False
        try:
            pred = [float(r["y"]) for r in csv.DictReader(open("submission.csv"))]
        except FileNotFoundError:
            print(json.dumps({"error": "no submission.csv"})); sys.exit(1)
        hits = sum(abs(p - t) < 1e-9 for p, t in zip(pred, truth))
        print(json.dumps({"accuracy": hits / len(truth), "split": split, "saw_test_labels": saw_test_labels}))
        """)
    )
    hidden = (
        "hidden_files: [{path: eval/secret.txt, splits: [validation, test]}, data/answers.csv,\n"
        "               {path: data/val_answers.csv, splits: [validation]}]"
        if hidden_secret
        else "hidden_files: []"
    )
    (task / "task.yaml").write_text(
        textwrap.dedent(f"""\
        id: tiny
        name: Tiny
        domain: testing
        description: |
          Predict y for each x in data/test.csv and write submission.csv.
          {{dataset_docs}}
        datasets:
          - name: tiny-data
            description: x and y columns.
            data_path: data
            mount: data
        starter_files:
          - src: starter/solve.py
        baseline:
          command: python solve.py
          scores:
            - accuracy: 0.5
        evaluation:
          command: python evaluate.py
          files:
            - src: eval/evaluate.py
            - src: eval/secret.txt
          timeout_s: 60
        metric: {{name: accuracy, direction: maximize}}
        submission:
          artefacts: [submission.csv]
        {hidden}
        limits:
          max_steps: 5
          command_timeout_s: 10
          training_timeout_s: 30
        """)
        + extra_yaml
    )
    return task


@pytest.fixture
def tiny_task(tmp_path: Path) -> Path:
    return write_task(tmp_path / "tasks")


@pytest.fixture(scope="session", autouse=True)
def private_compile_cache(tmp_path_factory):
    """Evaluators' compiled programs go to a folder of the test session, never the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESEARCHGYM_COMPILE_CACHE", str(tmp_path_factory.mktemp("compile-cache")))
        yield


@pytest.fixture(scope="module")
def private_researchgym_cache(tmp_path_factory):
    """A researchgym cache of the test module's own: what it materialises there (the ML-Bench
    toy repository, at a commit made anew each run) never piles up in the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESEARCHGYM_CACHE", str(tmp_path_factory.mktemp("researchgym-cache")))
        yield


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory):
    """A private hub mirror, hub cache and researchgym cache, with GPU tasks allowed on the CPU.

    Yields the mirror folder; a test module writes the fixtures it needs into it (see
    tests/hub_fixtures.py). Nothing touches the user's caches or the network.
    """
    root = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESEARCHGYM_HUB_MIRROR", str(root / "mirror"))
        patch.setenv("HF_HOME", str(root / "hf-home"))
        patch.setenv("RESEARCHGYM_CACHE", str(root / "researchgym-cache"))
        patch.setenv("RESEARCHGYM_ALLOW_NO_GPU", "1")
        patch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        yield root / "mirror"


#: Debian's Chromium (`make test` installs it), driven by Playwright in the viewer tests.
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module (skipped where Playwright or Debian's chromium is missing)."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


# The fast tier (`make test-fast`): everything but slow tests and tests that need torch, JAX, Ray
# or a browser. A test counts as heavy when its module plays a task that trains with torch or
# JAX (or loads a local model), when it uses the browser, or when its own source imports or
# skips on one of those packages.
HEAVY_MODULES = {
    "test_agent_local_llm",
    "test_cifar10",
    "test_coco_captioning",
    "test_doctor",
    "test_fashion_mnist",
    "test_fineweb_lm",
    "test_mlbench_labelled",  # spaCy's samples: spacy loads torch through thinc
    "test_mlbench_offline",
    "test_mnist_5k",
    "test_mnli",
    "test_model_local",
    "test_redteam_rl",
    "test_rl_tasks",
    "test_shakespeare_char",
}
# Heavy modules whose tests mostly keep one core busy (JAX on small networks, sandboxes, waits):
# make test runs them two at a time after the other heavy tests, which each use every core.
PAIRED_MODULES = {"test_redteam_rl", "test_rl_tasks"}
HEAVY_WORDS = ('"torch"', '"jax"', '"ray"', "import torch", "import jax", "import ray", 'executor="ray"', "playwright")


def _is_heavy(item: pytest.Item) -> bool:
    import inspect

    module = getattr(item, "module", None)
    if module is not None and module.__name__.rsplit(".", 1)[-1] in HEAVY_MODULES:
        return True
    if "browser" in getattr(item, "fixturenames", ()):
        return True
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        source = ""
    return any(word in source for word in HEAVY_WORDS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_heavy(item):
            item.add_marker(pytest.mark.heavy)
            module = getattr(item, "module", None)
            if module is not None and module.__name__.rsplit(".", 1)[-1] in PAIRED_MODULES:
                item.add_marker(pytest.mark.paired)
    if config.getoption("longest_files_first"):
        items[:] = longest_files_first(items, recorded_seconds())


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With `-m "... not heavy"`, the heavy modules are not even imported (several import torch)."""
    if "not heavy" in (config.option.markexpr or "") and collection_path.stem in HEAVY_MODULES:
        return True
    return None


# `make test` runs its first pass file by file on 4 workers (`--dist loadfile
# --no-loadscope-reorder --longest-files-first`), longest file first, so that no long file starts
# late and leaves one worker running alone at the end. Each file's seconds come from
# tests/durations.json; `--record-durations` adds a run's figures to it (a file it has never seen
# counts as the median).
DURATIONS_FILE = Path(__file__).with_name("durations.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--longest-files-first",
        action="store_true",
        help="run whole test files in order of their seconds in tests/durations.json, longest first "
        "(with --dist loadfile --no-loadscope-reorder, each worker takes the longest file left)",
    )
    parser.addoption(
        "--record-durations",
        action="store_true",
        help="write each test file's seconds in this run (setup, call and teardown of its selected "
        "tests) into tests/durations.json, which orders the files of a parallel run longest first",
    )


def recorded_seconds() -> dict[str, float]:
    """Seconds per test file (its name, e.g. 'test_sat_time.py') from tests/durations.json."""
    try:
        data = json.loads(DURATIONS_FILE.read_text())
    except (OSError, ValueError):
        return {}
    seconds = data.get("seconds") if isinstance(data, dict) else None
    if not isinstance(seconds, dict):
        return {}
    return {str(k): float(v) for k, v in seconds.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def longest_files_first(items: list[pytest.Item], seconds: dict[str, float]) -> list[pytest.Item]:
    """The items, whole files in order of their recorded seconds (longest first; a file with no
    record counts as the median), each file's tests in their own order."""
    default = statistics.median(seconds.values()) if seconds else 0.0
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(item.path.name, index)
    return sorted(items, key=lambda item: (-seconds.get(item.path.name, default), first_seen[item.path.name]))


class DurationRecorder:
    """With --record-durations, in the main process only (it hears every worker's reports): adds up
    each test file's seconds and writes them into tests/durations.json at the end."""

    def __init__(self) -> None:
        self.measured: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        self.measured[name] = self.measured.get(name, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        if not self.measured:
            return
        seconds = recorded_seconds()
        seconds.update({name: round(value, 1) for name, value in self.measured.items()})
        DURATIONS_FILE.write_text(
            json.dumps(
                {
                    "about": "seconds per test file, written by pytest --record-durations (tests/conftest.py)",
                    "seconds": dict(sorted(seconds.items())),
                },
                indent=1,
            )
            + "\n"
        )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("record_durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(DurationRecorder(), "researchgym-duration-recorder")
