"""MNLI from the hub: prepared from tiny mirrors of SetFit/mnli, nyu-mll/multi_nli and a tiny
BERT standing in for google-bert/bert-base-uncased; the matched set stays hidden, the real
baseline and evaluator run end to end in the sandbox, the score is checked against an
independent computation, and bad or pickled submissions are refused with a clear reason."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the nlp extra is not installed")
pytest.importorskip("transformers", reason="the nlp extra is not installed")
pytest.importorskip("datasets", reason="the hub extra is not installed")

from hub_fixtures import write_readme_configs  # noqa: E402

import researchgym  # noqa: E402
import researchgym.agents  # noqa: E402
from researchgym.errors import EvaluationError  # noqa: E402
from researchgym.evaluation import evaluate  # noqa: E402
from researchgym.hardware import HardwareError  # noqa: E402
from researchgym.runs.episode import run_episode  # noqa: E402

TASK = "mnli"
LABELS = ["entailment", "neutral", "contradiction"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ADJECTIVES = ["big", "small", "red", "old"]
VERBS = ["sees", "likes", "follows", "finds"]
# Each split has its own nouns, so no sentence of the hidden test set appears anywhere else.
NOUNS = {
    "train": ["cat", "dog", "bird", "horse", "mouse"],
    "mismatched": ["teacher", "doctor", "farmer", "pilot", "singer"],
    "matched": ["river", "mountain", "forest", "ocean", "valley"],
    "glue_test": ["lamp", "chair", "table", "window", "door"],
}
EXTRA_WORDS = ["not", "today", "."]


def _pairs(nouns: list[str], count: int) -> list[dict]:
    """Distinct premise/hypothesis pairs; the label follows a pattern (copy, add, negate)."""
    rows = []
    for adjective, first, verb, second in itertools.product(ADJECTIVES, nouns, VERBS, nouns):
        if first == second:
            continue
        label = len(rows) % 3
        premise = f"The {adjective} {first} {verb} the {second}."
        hypothesis = [
            f"The {first} {verb} the {second}.",
            f"The {first} {verb} the {second} today.",
            f"The {first} does not {verb} the {second}.",
        ][label]
        rows.append({"premise": premise, "hypothesis": hypothesis, "label": label})
        if len(rows) == count:
            return rows
    raise AssertionError("not enough distinct pairs")


def _vocabulary() -> list[str]:
    words = {"the", "does", *ADJECTIVES, *VERBS, *EXTRA_WORDS, *itertools.chain(*NOUNS.values())}
    return SPECIAL + sorted(words)


def _tiny_bert_config(**overrides):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(_vocabulary()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        type_vocab_size=2,
        **overrides,
    )


def write_setfit_mnli(mirror: Path, rows: dict[str, list[dict]]) -> None:
    """SetFit/mnli as on the hub: JSON lines named by split (no README configs), fields text1,
    text2, label, idx, label_text. Its validation file is MultiNLI's matched validation set."""
    repo = mirror / "SetFit" / "mnli"
    repo.mkdir(parents=True)
    (repo / "README.md").write_text("A small fixture for researchgym's tests.\n")
    for name, split in (
        ("train.jsonl", "train"),
        ("validation_matched.jsonl", "matched"),
        ("test_matched.jsonl", "glue_test"),
    ):
        with (repo / name).open("w") as out:
            for index, row in enumerate(rows[split]):
                label = row["label"]
                out.write(
                    json.dumps(
                        {
                            "text1": row["premise"],
                            "text2": row["hypothesis"],
                            "label": label,
                            "idx": index,
                            "label_text": LABELS[label] if label >= 0 else "unlabeled",
                        }
                    )
                    + "\n"
                )


def write_multi_nli(mirror: Path, rows: dict[str, list[dict]]) -> None:
    """nyu-mll/multi_nli as on the hub: parquet files under data/, README configs, ClassLabel."""
    from datasets import ClassLabel, Dataset, Features, Value

    repo = mirror / "nyu-mll" / "multi_nli"
    features = Features(
        {
            "promptID": Value("int32"),
            "pairID": Value("string"),
            "premise": Value("string"),
            "hypothesis": Value("string"),
            "genre": Value("string"),
            "label": ClassLabel(names=LABELS),
        }
    )
    for split, source in (
        ("train", "train"),
        ("validation_matched", "matched"),
        ("validation_mismatched", "mismatched"),
    ):
        data = rows[source]
        columns = {
            "promptID": list(range(len(data))),
            "pairID": [f"{i}n" for i in range(len(data))],
            "premise": [r["premise"] for r in data],
            "hypothesis": [r["hypothesis"] for r in data],
            "genre": ["fiction"] * len(data),
            "label": [r["label"] for r in data],
        }
        path = repo / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(columns, features=features).to_parquet(str(path))
    write_readme_configs(
        repo,
        {
            "default": {
                "train": "data/train-*",
                "validation_matched": "data/validation_matched-*",
                "validation_mismatched": "data/validation_mismatched-*",
            }
        },
    )


def write_tiny_bert(mirror: Path) -> None:
    """google-bert/bert-base-uncased in miniature: a 2-layer BERT (masked-LM head, as the real
    one) saved as safetensors, a vocabulary of the fixture's words, no tokenizer.json."""
    from transformers import BertForMaskedLM

    repo = mirror / "google-bert" / "bert-base-uncased"
    torch.manual_seed(0)
    BertForMaskedLM(_tiny_bert_config()).save_pretrained(str(repo))
    (repo / "vocab.txt").write_text("\n".join(_vocabulary()) + "\n")
    (repo / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}))


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    rows = {
        "train": _pairs(NOUNS["train"], 40),
        "mismatched": _pairs(NOUNS["mismatched"], 24),
        "matched": _pairs(NOUNS["matched"], 21),
        "glue_test": _pairs(NOUNS["glue_test"], 6),
    }
    rows["train"].append({"premise": "The cat.", "hypothesis": "The dog.", "label": -1})  # no gold label
    for row in rows["glue_test"]:
        row["label"] = -1  # GLUE's test labels are not public
    return rows


@pytest.fixture(scope="module")
def task(hub_env, rows):
    write_setfit_mnli(hub_env, rows)
    write_multi_nli(hub_env, rows)
    write_tiny_bert(hub_env)
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    return spec


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def accuracy_on_host(model_dir: Path, data: Path, rows: list[dict]) -> float:
    """An independent score: the saved model, the fixed tokenizer, every pair in one batch padded
    to 128 tokens (the evaluator pads per batch of 32 to the longest pair)."""
    from transformers import BertForSequenceClassification, BertTokenizer

    model = BertForSequenceClassification.from_pretrained(str(model_dir)).float().eval()
    tokenizer = BertTokenizer.from_pretrained(str(data / "bert-base-uncased"))
    inputs = tokenizer(
        [r["premise"] for r in rows],
        [r["hypothesis"] for r in rows],
        padding="max_length",
        truncation=True,
        max_length=128,
        return_tensors="pt",
    )
    with torch.no_grad():
        predicted = model(**inputs).logits.argmax(dim=-1)
    labels = torch.tensor([r["label"] for r in rows])
    return 100.0 * float((predicted == labels).sum()) / len(rows)


def train_on_host(data: Path, rows: list[dict], folder: Path) -> None:
    """A model that learned something (the baseline's tiny learning rate leaves the tiny BERT
    predicting one class), so comparing scores tells predictions apart."""
    from transformers import BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(str(data / "bert-base-uncased"), num_labels=3)
    tokenizer = BertTokenizer.from_pretrained(str(data / "bert-base-uncased"))
    inputs = tokenizer([r["premise"] for r in rows], [r["hypothesis"] for r in rows], padding=True, return_tensors="pt")
    labels = torch.tensor([r["label"] for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        model(**inputs, labels=labels).loss.backward()
        optimizer.step()
    model.save_pretrained(str(folder))


@pytest.fixture(scope="module")
def baseline_run(task, tmp_path_factory):
    """The scripted baseline agent through a whole episode; its workspace is kept."""
    env = researchgym.make(TASK, workspace_dir=tmp_path_factory.mktemp("workspaces"))
    result = run_episode(env, researchgym.agents.create_agent("baseline"), seed=0)
    return env.workspace, result


def test_prepare_builds_the_splits_and_hides_the_matched_set(task, rows):
    """Also: the baseline's options make a run of seconds, and no bert_mnli_model/ is no submission."""
    folder = task.dataset_path(task.datasets[0])
    train = read_jsonl(folder / "train.jsonl")
    assert train == rows["train"][:-1]  # the unlabelled row is dropped, fields renamed
    assert read_jsonl(folder / "validation.jsonl") == rows["mismatched"]
    assert read_jsonl(folder / "answers" / "test.jsonl") == rows["matched"]
    assert sorted(p.name for p in (folder / "bert-base-uncased").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    # SetFit's validation split is the matched set: none of it is in the visible files.
    visible = (folder / "train.jsonl").read_text() + (folder / "validation.jsonl").read_text()
    assert not any(row["premise"] in visible for row in rows["matched"])

    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step(
        "ls data data/bert-base-uncased; cat data/answers/test.jsonl; "
        "grep -rh --include=*.jsonl mountain data; grep -rh --include=*.jsonl -m1 teacher data"
    )
    quick, *_ = env.step("python baseline.py --train-limit 8 --max-length 32 --batch-size 4 --epochs 2")
    env.step("rm -r bert_mnli_model")
    observation, _, _, _, info = env.step("submit")
    env.close()
    assert "train.jsonl" in listing and "validation.jsonl" in listing and "vocab.txt" in listing
    assert "test.jsonl: No such file" in listing and "mountain" not in listing  # masked, in no other split
    assert '"premise": "The big teacher' in listing  # while a validation noun is found
    assert "8 training pairs, 24 validation pairs" in quick and "epoch 2: validation accuracy" in quick
    assert "saved bert_mnli_model/" in quick
    assert info["exit_status"] == "submission_not_found" and "bert_mnli_model" in observation


def test_the_baseline_agent_trains_and_is_scored_end_to_end(baseline_run):
    workspace, result = baseline_run
    assert result.exit_status == "submitted", result.scores
    assert 0.0 <= result.final_score <= 100.0
    assert (workspace / "bert_mnli_model" / "model.safetensors").is_file()
    assert not (workspace / "bert_mnli_model" / "pytorch_model.bin").exists()


def test_the_score_is_the_accuracy_on_the_hidden_matched_set(task, rows, baseline_run):
    workspace, result = baseline_run
    data = task.dataset_path(task.datasets[0])
    model = workspace / "bert_mnli_model"
    assert result.final_score == pytest.approx(accuracy_on_host(model, data, rows["matched"]), abs=1e-9)
    validation = [s for s in result.scores if "validation" in s][0]["validation"]["value"]
    assert validation == pytest.approx(accuracy_on_host(model, data, rows["mismatched"]), abs=1e-9)


def test_a_trained_model_is_scored_exactly_and_replacing_evaluate_py_changes_nothing(task, rows, tmp_path):
    data = task.dataset_path(task.datasets[0])
    model = tmp_path / "bert_mnli_model"
    train_on_host(data, rows["train"][:-1], model)
    expected_validation = accuracy_on_host(model, data, rows["mismatched"])
    expected_test = accuracy_on_host(model, data, rows["matched"])
    assert expected_test > 40.0  # not one class for every pair (33.3%)
    env = researchgym.make(TASK)
    env.reset(seed=1)
    shutil.copytree(model, env.workspace / "bert_mnli_model")
    # The read-only starter copy works by hand in the workspace (without the isolation helper).
    by_hand, *_ = env.step("python evaluate.py --split validation")
    line = [json.loads(x) for x in by_hand.splitlines() if x.startswith("{")][-1]
    assert line["validation_accuracy"] == pytest.approx(expected_validation, abs=1e-9)
    hidden, *_ = env.step("python evaluate.py --split test")
    assert "The test split is hidden from the workspace" in hidden
    env.step('chmod u+w evaluate.py && echo \'print("{\\"validation_accuracy\\": 99.5}")\' > evaluate.py')
    forged, *_ = env.step("python evaluate.py")
    assert '"validation_accuracy": 99.5' in forged  # no split of 21 or 24 pairs gives 99.5%
    _, _, _, _, info = env.step("submit")  # scored by the trusted copy (validate uses the same)
    env.close()
    assert info["exit_status"] == "submitted"
    assert info["scores"][-1]["test"]["value"] == pytest.approx(expected_test, abs=1e-9)


def test_pickled_weights_are_refused_before_anything_is_loaded(task, tmp_path):
    from transformers import BertForSequenceClassification

    folder = tmp_path / "bert_mnli_model"
    model = BertForSequenceClassification(_tiny_bert_config(num_labels=3))
    model.config.save_pretrained(str(folder))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path, split="validation", seed=0)
    message = str(caught.value)
    assert caught.value.status == "evaluation_error"
    assert "no model.safetensors (found pytorch_model.bin)" in message and "can run code" in message


def test_a_model_with_the_wrong_number_of_labels_is_refused(task, tmp_path):
    from transformers import BertForSequenceClassification

    BertForSequenceClassification(_tiny_bert_config(num_labels=2)).save_pretrained(str(tmp_path / "bert_mnli_model"))
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path, split="test", seed=0)
    assert caught.value.status == "evaluation_error" and "num_labels=2; MNLI needs 3" in str(caught.value)


def test_a_model_without_the_classification_head_is_refused(task, tmp_path):
    from transformers import BertModel

    # A bare encoder: loading it as a classifier would leave the head random (a seed-dependent score).
    BertModel(_tiny_bert_config(num_labels=3)).save_pretrained(str(tmp_path / "bert_mnli_model"))
    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path, split="validation", seed=0)
    assert caught.value.status == "evaluation_error" and "classifier.weight" in str(caught.value)


def test_without_a_gpu_the_task_is_refused_and_names_a_cpu_task(task, monkeypatch):
    monkeypatch.delenv("RESEARCHGYM_ALLOW_NO_GPU")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # even on a GPU machine: none visible
    with pytest.raises(HardwareError) as caught:
        researchgym.make(TASK)
    assert "'mnli' needs 1 GPU(s)" in str(caught.value) and "shakespeare-char" in str(caught.value)
