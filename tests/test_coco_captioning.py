"""COCO captioning from the hub: prepared from a tiny mirror of lmms-lab/COCO-Caption (coloured
shapes with captions from a small grammar, written with `datasets`) and a randomly initialised
ResNet-50 standing in for torchvision's weights; the test captions stay hidden, the real baseline
and evaluator run end to end in the sandbox, and the BLEU the evaluator reports is checked
against an independent computation. A `bleu_score` column, a forged evaluate.py and malformed
submissions change nothing or are refused with a reason."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import warnings
from collections import Counter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the captioning extra is not installed")
pytest.importorskip("nltk", reason="the captioning extra is not installed")
pytest.importorskip("PIL", reason="the captioning extra is not installed")
pytest.importorskip("datasets", reason="the hub extra is not installed")

from hub_fixtures import write_readme_configs  # noqa: E402

import researchgym  # noqa: E402
import researchgym.agents  # noqa: E402
from researchgym.errors import EvaluationError  # noqa: E402
from researchgym.evaluation import evaluate  # noqa: E402
from researchgym.hardware import HardwareError  # noqa: E402
from researchgym.runs.episode import run_episode  # noqa: E402

TASK = "coco-captioning"
ROWS = 40  # -> train 30, validation 5, test 5
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (235, 210, 40)}
SHAPES = ["circle", "square", "triangle"]
BACKGROUNDS = {"white": (250, 250, 250), "black": (15, 15, 15)}
TEMPLATES = [
    "a {colour} {shape} on a {background} background",
    "A {colour} {shape} in the middle of a {background} picture.",
    "there is a {colour} {shape} on {background}",
    "a picture of a {colour} {shape}",
    "A simple {shape}, coloured {colour}, on a {background} background.",
    "one {colour} {shape} drawn on {background}",
]


# ------------------------------------------------------------------ fixture
def _draw(colour: str, shape: str, background: str, size: tuple[int, int]):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, BACKGROUNDS[background])
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    if shape == "circle":
        draw.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        draw.rectangle(box, fill=COLOURS[colour])
    else:
        draw.polygon([(w // 2, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)], fill=COLOURS[colour])
    return image


def fixture_rows() -> list[dict]:
    """ROWS images, each a coloured shape with 5 captions (one has 6, as a few COCO images do)."""
    combos = itertools.cycle(itertools.product(COLOURS, SHAPES, BACKGROUNDS))
    rows = []
    for index in range(ROWS):
        colour, shape, background = next(combos)
        count = 6 if index == 7 else 5
        captions = [
            TEMPLATES[(index + k) % len(TEMPLATES)].format(colour=colour, shape=shape, background=background)
            for k in range(count)
        ]
        size = (48, 64) if index % 3 == 0 else (64, 48)
        rows.append(
            {
                "image_id": 100_000 + 7 * index,
                "image": _draw(colour, shape, background, size),
                "captions": captions,
                "size": size,
            }
        )
    return rows


def write_coco_caption(mirror: Path, rows: list[dict]) -> None:
    """lmms-lab/COCO-Caption as on the hub: parquet shards under data/, README configs for the
    split `val`, the lmms-eval fields (question_id is the COCO file name, answer the captions)."""
    from datasets import Dataset, Features, Image, Sequence, Value

    repo = mirror / "lmms-lab" / "COCO-Caption"
    features = Features(
        {
            "question_id": Value("string"),
            "image": Image(),
            "question": Value("string"),
            "answer": Sequence(Value("string")),
            "id": Value("int64"),
            "license": Value("int8"),
            "file_name": Value("string"),
            "coco_url": Value("string"),
            "height": Value("int32"),
            "width": Value("int32"),
            "date_captured": Value("string"),
        }
    )
    names = [f"COCO_val2014_{row['image_id']:012d}.jpg" for row in rows]
    columns = {
        "question_id": names,
        "image": [row["image"] for row in rows],
        "question": ["Provide a one-sentence caption for the provided image."] * len(rows),
        "answer": [row["captions"] for row in rows],
        "id": [row["image_id"] for row in rows],
        "license": [1] * len(rows),
        "file_name": names,
        "coco_url": [f"http://images.cocodataset.org/val2014/{name}" for name in names],
        "height": [row["size"][1] for row in rows],
        "width": [row["size"][0] for row in rows],
        "date_captured": ["2013-11-14 16:28:13"] * len(rows),
    }
    path = repo / "data" / "val-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(columns, features=features).to_parquet(str(path))
    write_readme_configs(repo, {"default": {"val": "data/val-*"}})


def resnet50_state_dict() -> dict:
    """A randomly initialised ResNet-50 with torchvision's parameter names and shapes, written
    out here rather than taken from torchvision: its PyPI wheel is a CUDA build that does not
    import beside a CPU-only torch (test_the_fixture_weights_have_resnet50s_size checks its size)."""
    generator = torch.Generator().manual_seed(0)
    state = {}

    def conv(name, out, inp, k):
        state[f"{name}.weight"] = torch.randn(out, inp, k, k, generator=generator) * math.sqrt(2 / (inp * k * k))

    def norm(name, n):
        state.update(
            {
                f"{name}.weight": torch.ones(n),
                f"{name}.bias": torch.zeros(n),
                f"{name}.running_mean": torch.zeros(n),
                f"{name}.running_var": torch.ones(n),
                f"{name}.num_batches_tracked": torch.tensor(0),
            }
        )

    conv("conv1", 64, 3, 7)
    norm("bn1", 64)
    inplanes = 64
    for layer, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for block in range(blocks):
            prefix = f"layer{layer}.{block}"
            conv(f"{prefix}.conv1", width, inplanes, 1)
            norm(f"{prefix}.bn1", width)
            conv(f"{prefix}.conv2", width, width, 3)
            norm(f"{prefix}.bn2", width)
            conv(f"{prefix}.conv3", 4 * width, width, 1)
            norm(f"{prefix}.bn3", 4 * width)
            if block == 0:
                conv(f"{prefix}.downsample.0", 4 * width, inplanes, 1)
                norm(f"{prefix}.downsample.1", 4 * width)
            inplanes = 4 * width
    state["fc.weight"] = torch.randn(1000, 2048, generator=generator) * 0.01
    state["fc.bias"] = torch.zeros(1000)
    return state


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return fixture_rows()


@pytest.fixture(scope="module")
def task(hub_env, rows):
    write_coco_caption(hub_env, rows)
    (hub_env / "urls").mkdir(parents=True, exist_ok=True)
    torch.save(resnet50_state_dict(), hub_env / "urls" / "resnet50-0676ba61.pth")
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    return spec


def data_folder(task) -> Path:
    return task.dataset_path(task.datasets[0])


def references(task, split: str) -> dict[str, list[str]]:
    path = "answers/test_captions.json" if split == "test" else "validation_captions.json"
    return json.loads((data_folder(task) / path).read_text())


# ------------------------------------------------------- independent BLEU
def _normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+|[^\w\s]", text.lower()))


def character_bleu(reference: str, hypothesis: str) -> float:
    """BLEU-4 over characters, written out: clipped n-gram precisions (n = 1..4), geometric
    mean, brevity penalty; 0 when any precision is 0 (no smoothing)."""
    ref, hyp = _normalised(reference), _normalised(hypothesis)
    logs = []
    for n in range(1, 5):
        hyp_grams = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        ref_grams = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        matches = sum(min(count, ref_grams[gram]) for gram, count in hyp_grams.items())
        if matches == 0:
            return 0.0
        logs.append(math.log(matches / sum(hyp_grams.values())))
    penalty = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return penalty * math.exp(sum(logs) / 4)


def expected_bleu(refs: dict[str, list[str]], captions: dict[str, str]) -> float:
    return sum(character_bleu(refs[key][0], captions[key]) for key in refs) / len(refs)


def word_corpus_bleu(refs: dict[str, list[str]], captions: dict[str, str]) -> float:
    from nltk.translate.bleu_score import corpus_bleu

    split = lambda text: _normalised(text).split()  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no 4-gram match: NLTK warns and gives ~0
        return corpus_bleu([[split(r) for r in refs[key]] for key in refs], [split(captions[key]) for key in refs])


def write_submission(folder: Path, captions: dict[str, str], extra: dict[str, str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "submission.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "caption", *(extra or {})])
        for key, caption in captions.items():
            writer.writerow([key, caption, *(extra or {}).values()])


def read_submission(path: Path) -> dict[str, str]:
    with path.open(newline="") as handle:
        return {row["id"]: row["caption"] for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def baseline_run(task, tmp_path_factory):
    """The scripted baseline agent through a whole episode; its workspace is kept."""
    env = researchgym.make(TASK, workspace_dir=tmp_path_factory.mktemp("workspaces"))
    result = run_episode(env, researchgym.agents.create_agent("baseline"), seed=0)
    return env.workspace, result


# -------------------------------------------------------------------- tests
def test_prepare_splits_the_hub_data_and_hides_the_test_captions(task, rows):
    from PIL import Image

    folder = data_folder(task)
    train = json.loads((folder / "train_captions.json").read_text())
    validation = references(task, "validation")
    test_ids = json.loads((folder / "test_images.json").read_text())
    test = references(task, "test")
    assert (len(train), len(validation), len(test_ids)) == (30, 5, 5) and list(test) == test_ids
    assert not (set(train) & set(validation)) and not (set(train) | set(validation)) & set(test_ids)
    source = {f"COCO_val2014_{row['image_id']:012d}": row["captions"] for row in rows}
    assert set(train) | set(validation) | set(test) == set(source)  # ids from question_id, no extension
    for key, captions in {**train, **validation, **test}.items():
        assert sorted(captions) == sorted(source[key])  # the scoring reference is moved first, nothing lost
    assert any(validation[key][0] != source[key][0] for key in validation) or any(
        test[key][0] != source[key][0] for key in test
    )  # the reference is drawn, not always the first
    for split, ids in (("train", train), ("validation", validation), ("test", test_ids)):
        for key in ids:
            with Image.open(folder / "images" / split / f"{key}.jpg") as image:
                assert image.mode == "RGB" and min(image.size) == 256
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"]["dataset"] == "lmms-lab/COCO-Caption" and manifest["source"]["id_field"] == "question_id"
    assert manifest["splits"] == {"train": 30, "validation": 5, "test": 5} and manifest["seed"] == 0
    assert (folder / "encoder" / "resnet50-0676ba61.pth").is_file()

    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step("ls data data/answers; ls data/images/test | wc -l; cat data/answers/test_captions.json")
    by_hand, *_ = env.step("python evaluate.py --split test")
    env.close()
    assert "test_images.json" in listing and "validation_captions.json" in listing and "\n5\n" in listing
    assert "test_captions.json: No such file" in listing  # masked in the agent's sandbox
    assert "only `submit` scores the test split" in by_hand


def test_the_baseline_agent_captions_and_is_scored_end_to_end(task, baseline_run):
    workspace, result = baseline_run
    assert result.exit_status == "submitted", result.scores
    captions = read_submission(workspace / "submission.csv")
    test, validation = references(task, "test"), references(task, "validation")
    assert set(captions) == set(test) | set(validation) and all(c.strip() for c in captions.values())
    assert result.final_score == pytest.approx(expected_bleu(test, captions), abs=1e-12)
    validated = [s for s in result.scores if "validation" in s][0]["validation"]
    assert validated["value"] == pytest.approx(expected_bleu(validation, captions), abs=1e-12)
    assert validated["metrics"]["bleu4"] == pytest.approx(word_corpus_bleu(validation, captions), abs=1e-12)


def test_bleu_is_computed_by_the_evaluator_from_the_captions(task, tmp_path):
    test, validation = references(task, "test"), references(task, "validation")
    # The scoring references themselves: 1.0 on both metrics.
    perfect = {key: refs[0] for refs in (test, validation) for key, refs in refs.items()}
    write_submission(tmp_path / "perfect", {key: caption.upper() for key, caption in perfect.items()})
    for split in ("validation", "test"):
        score = evaluate(task, tmp_path / "perfect", split=split, seed=0)
        assert score.value == 1.0 and score.metrics["bleu4"] == 1.0 and score.metrics["images"] == 5
    # Another of each image's captions, or a wrong one: what the definition gives.
    mixed = {
        key: (refs[1] if i % 2 else "an elephant eats a large cake in the kitchen")
        for refs in (test, validation)
        for i, (key, refs) in enumerate(refs.items())
    }
    write_submission(tmp_path / "mixed", mixed)
    for split, refs in (("validation", validation), ("test", test)):
        score = evaluate(task, tmp_path / "mixed", split=split, seed=0)
        assert score.value == pytest.approx(expected_bleu(refs, mixed), abs=1e-12) and score.value < 1.0
        assert score.metrics["bleu4"] == pytest.approx(word_corpus_bleu(refs, mixed), abs=1e-12)
    wrong = {key: "an elephant eats a large cake in the kitchen" for key in perfect}
    write_submission(tmp_path / "wrong", wrong)
    score = evaluate(task, tmp_path / "wrong", split="test", seed=0)
    assert score.value == pytest.approx(expected_bleu(test, wrong), abs=1e-12) and score.value < 0.3


def test_a_bleu_score_column_and_a_forged_evaluate_py_change_nothing(task):
    test, validation = references(task, "test"), references(task, "validation")
    wrong = {key: "an elephant eats a large cake in the kitchen" for refs in (test, validation) for key in refs}
    env = researchgym.make(TASK)
    env.reset(seed=1)
    write_submission(env.workspace, wrong, extra={"bleu_score": "1.0"})  # MLGym scored this column
    env.step('chmod u+w evaluate.py && echo \'print("{\\"BLEU Score\\": 1.0}")\' > evaluate.py')
    forged, *_ = env.step("python evaluate.py")
    assert '"BLEU Score": 1.0' in forged
    env.step("validate")
    _, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "submitted"
    validated, submitted = info["scores"][0], info["scores"][-1]
    assert validated["validation"]["value"] == pytest.approx(expected_bleu(validation, wrong), abs=1e-12)
    assert submitted["test"]["value"] == pytest.approx(expected_bleu(test, wrong), abs=1e-12)
    assert submitted["test"]["value"] < 0.3


def test_malformed_submissions_are_refused_with_a_reason(task, tmp_path):
    validation = references(task, "validation")
    good = {key: refs[0] for key, refs in validation.items()}
    first = next(iter(good))
    cases = {
        "missing": (
            {k: v for k, v in good.items() if k != first},
            f"lacks 1 of the 5 validation ids, e.g. ['{first}']",
        ),
        "empty": ({**good, first: "  "}, f"the caption for {first} is empty"),
        "long": ({**good, first: "a " * 200}, "has 400 characters; at most 300"),
    }
    for name, (captions, message) in cases.items():
        write_submission(tmp_path / name, captions)
        with pytest.raises(EvaluationError) as caught:
            evaluate(task, tmp_path / name, split="validation", seed=0)
        assert caught.value.status == "evaluation_format_error" and message in str(caught.value), name
    (tmp_path / "repeated").mkdir()
    (tmp_path / "repeated" / "submission.csv").write_text(f"id,caption\n{first},a cat\n{first},a dog\n")
    (tmp_path / "columns").mkdir()
    (tmp_path / "columns" / "submission.csv").write_text("id,bleu_score\nx,1.0\n")
    for name, message in (("repeated", f"repeats the id '{first}'"), ("columns", "needs the columns id and caption")):
        with pytest.raises(EvaluationError) as caught:
            evaluate(task, tmp_path / name, split="validation", seed=0)
        assert caught.value.status == "evaluation_format_error" and message in str(caught.value), name
    (tmp_path / "nothing").mkdir()
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path / "nothing", split="test", seed=0)
    assert caught.value.status == "submission_not_found"


def test_the_fixture_weights_have_resnet50s_size():
    """torchvision documents ResNet-50 (IMAGENET1K_V1) as 25,557,032 parameters; the fixture's
    trainable tensors (running statistics excluded) must add up to exactly that."""
    state = resnet50_state_dict()
    trainable = sum(
        v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert trainable == 25_557_032


def test_a_gpu_task_is_refused_without_a_gpu(task, monkeypatch):
    monkeypatch.delenv("RESEARCHGYM_ALLOW_NO_GPU")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(HardwareError) as caught:
        researchgym.make(TASK)
    assert "'coco-captioning' needs 1 GPU(s)" in str(caught.value) and "mnist-5k" in str(caught.value)


def test_the_baseline_options_and_the_evaluator_by_hand(task):
    env = researchgym.make(TASK)
    env.reset(seed=2)
    observation, *_ = env.step(
        "python baseline.py --epochs 1 --train-limit 8 --image-size 32 --batch-size 4 "
        "--min-freq 1 && python evaluate.py --split validation"
    )
    captions = read_submission(env.workspace / "submission.csv")
    env.close()
    assert "8 training images" in observation and "wrote submission.csv" in observation
    line = [json.loads(x) for x in observation.splitlines() if x.startswith("{")][-1]
    assert line["BLEU Score"] == pytest.approx(expected_bleu(references(task, "validation"), captions), abs=1e-12)
    assert "token" not in line  # by hand there is no result token to sign with


def _prepare_module():
    import importlib.util

    path = Path(researchgym.load_task(TASK).path("prepare.py"))
    spec = importlib.util.spec_from_file_location("coco_prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_sizes_and_ids_whatever_the_source_fields():
    from datasets import Dataset

    prepare = _prepare_module()
    assert prepare.split_sizes(40_504) == (30_000, 5_000, 5_000)
    assert prepare.split_sizes(40) == (30, 5, 5) and prepare.split_sizes(3) == (1, 1, 1)
    with pytest.raises(RuntimeError, match="at least 3"):
        prepare.split_sizes(2)
    names = ["COCO_val2014_000000000001.jpg", "COCO_val2014_000000000002.jpg"]
    assert prepare.image_ids(Dataset.from_dict({"question_id": names, "file_name": ["x", "x"]})) == (
        ["COCO_val2014_000000000001", "COCO_val2014_000000000002"],
        "question_id",
    )
    # question_id repeats (e.g. one row per question): the file name is used instead.
    assert prepare.image_ids(Dataset.from_dict({"question_id": ["q", "q"], "file_name": names}))[1] == "file_name"
    assert prepare.image_ids(Dataset.from_dict({"answer": [["a"]] * 12})) == (
        [f"{i:02d}" for i in range(12)],
        "row index",
    )
