"""Score bert_mnli_model/ on MNLI: accuracy (%) of its 3-way predictions on a whole split.

    python evaluate.py --split validation|test

`validation` is data/validation.jsonl (MultiNLI's mismatched validation set, visible to you);
`test` is data/answers/test.jsonl (the matched validation set), which only test-split
evaluations are given: the agent never sees its sentences, so this script does the inference.

bert_mnli_model/ must be what `save_pretrained` writes for a BertForSequenceClassification with
3 labels (0 entailment, 1 neutral, 2 contradiction): config.json and model.safetensors. Weights
are loaded from safetensors only; pickled weights (pytorch_model.bin) are refused because
unpickling can run code, and no code from the folder is ever run (no trust_remote_code). The
tokenizer is always the fixed one in data/bert-base-uncased, never the submission's: pairs are
tokenised as (premise, hypothesis), truncated to 128 tokens, in batches of 32, in fp32, and the
prediction is the argmax of the logits. Each batch is padded to its longest pair rather than to
128 tokens: with BERT's attention mask the logits are the same (up to float rounding), and it is
several times faster.

Prints one JSON line: {"validation_accuracy": 100 * correct / pairs, "split": ...}. The metric
keeps MLGym's name whatever the split; on `submit` it is measured on the hidden test set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from agent_link import report as emit
from isolation import no_memory_access, take_secrets  # beside this file, in the workspace too

MODEL_DIR = "bert_mnli_model"
TOKENIZER_DIR = "data/bert-base-uncased"
SPLIT_FILES = {"validation": "data/validation.jsonl", "test": "data/answers/test.jsonl"}
MAX_LENGTH = 128
BATCH_SIZE = 32
NUM_LABELS = 3


class Rejected(Exception):
    """The submission cannot be scored; `status` says why (see docs/task-authoring.md)."""

    def __init__(self, message: str, status: str = "evaluation_error") -> None:
        super().__init__(message)
        self.status = status


def check_folder() -> None:
    """The folder must hold a safetensors save_pretrained checkpoint, nothing to unpickle."""
    if not os.path.isdir(MODEL_DIR):
        raise Rejected(f"{MODEL_DIR}/ was not found in the workspace root: save your model with "
                       f"model.save_pretrained('{MODEL_DIR}')", "submission_not_found")
    names = set(os.listdir(MODEL_DIR))
    if "config.json" not in names:
        raise Rejected(f"{MODEL_DIR}/ has no config.json: save it with model.save_pretrained('{MODEL_DIR}')")
    if not names & {"model.safetensors", "model.safetensors.index.json"}:
        pickled = sorted(n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")))
        found = f" (found {', '.join(pickled)})" if pickled else ""
        raise Rejected(f"{MODEL_DIR}/ has no model.safetensors{found}. Only safetensors weights are accepted: "
                       "pickled weights such as pytorch_model.bin are refused because loading them can run "
                       "code. model.save_pretrained() writes safetensors by default.")
    if "adapter_config.json" in names:
        raise Rejected(f"{MODEL_DIR}/ holds a PEFT adapter; merge it into the model and save the full "
                       "BertForSequenceClassification with save_pretrained")


def load_model(torch, device):
    """BertForSequenceClassification from the submission, checked to be a complete 3-label BERT."""
    from transformers import BertConfig, BertForSequenceClassification

    try:
        with open(os.path.join(MODEL_DIR, "config.json")) as handle:
            model_type = json.load(handle).get("model_type")
        config = BertConfig.from_pretrained(MODEL_DIR, local_files_only=True)
    except Exception as exc:
        raise Rejected(f"{MODEL_DIR}/config.json is not a BERT config: {type(exc).__name__}: {exc}") from exc
    if model_type != "bert":  # BertConfig would read any config and call it bert
        raise Rejected(f"{MODEL_DIR}/config.json has model_type {model_type!r}; this task needs 'bert' "
                       "(a BertForSequenceClassification)")
    if config.num_labels != NUM_LABELS:
        raise Rejected(f"{MODEL_DIR} has num_labels={config.num_labels}; MNLI needs {NUM_LABELS} "
                       "(0 entailment, 1 neutral, 2 contradiction): "
                       f"BertForSequenceClassification.from_pretrained(..., num_labels={NUM_LABELS})")
    if getattr(config, "quantization_config", None):
        raise Rejected(f"{MODEL_DIR}/config.json has a quantization_config; save an unquantized model")
    if config.max_position_embeddings < MAX_LENGTH or config.type_vocab_size < 2:
        raise Rejected(f"{MODEL_DIR} must accept {MAX_LENGTH} positions and 2 token types (sentence pairs); it has "
                       f"{config.max_position_embeddings} and {config.type_vocab_size}")
    try:
        model, info = BertForSequenceClassification.from_pretrained(
            MODEL_DIR, config=config, use_safetensors=True, local_files_only=True, dtype=torch.float32,
            attn_implementation="sdpa", output_loading_info=True)  # not whatever the config names
    except Exception as exc:
        raise Rejected(f"{MODEL_DIR} could not be loaded as a BertForSequenceClassification: "
                       f"{type(exc).__name__}: {exc}") from exc
    missing = sorted(info.get("missing_keys") or [])
    mismatched = sorted(k[0] if isinstance(k, (tuple, list)) else k for k in info.get("mismatched_keys") or [])
    if missing or mismatched:
        shown = ", ".join(str(k) for k in (missing or mismatched)[:5])
        raise Rejected(f"{MODEL_DIR}/model.safetensors lacks or mis-shapes weights of a BertForSequenceClassification "
                       f"({len(missing)} missing, {len(mismatched)} of the wrong shape, e.g. {shown}); they would be "
                       "random. Save the whole classifier with save_pretrained.")
    return model.float().to(device).eval()


def read_split(split: str) -> list[dict]:
    try:
        with open(SPLIT_FILES[split]) as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except OSError as exc:  # by hand in the workspace, the test pairs are hidden
        raise Rejected(f"cannot read the {split} pairs ({SPLIT_FILES[split]}): {exc.strerror or exc}. The test "
                       "split is hidden from the workspace; only the evaluation of a submit can read it.") from exc


def main() -> int:
    no_memory_access()
    take_secrets()  # nothing random here; the result goes to the channel only the evaluator can write

    def report(**fields) -> None:
        emit(fields)

    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=sorted(SPLIT_FILES),
                        default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # everything is local; never let transformers try the network
    try:
        check_folder()
        rows = read_split(args.split)
        import torch
        from transformers import BertTokenizer

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = load_model(torch, device)
        tokenizer = BertTokenizer.from_pretrained(TOKENIZER_DIR, local_files_only=True)
        if len(tokenizer) > model.config.vocab_size:
            raise Rejected(f"{MODEL_DIR} has vocab_size {model.config.vocab_size}, but the task's tokenizer "
                           f"(bert-base-uncased) has {len(tokenizer)} tokens: keep BERT's vocabulary")
        correct = 0
        with torch.no_grad():
            for start in range(0, len(rows), BATCH_SIZE):
                batch = rows[start:start + BATCH_SIZE]
                inputs = tokenizer([r["premise"] for r in batch], [r["hypothesis"] for r in batch], padding=True,
                                   truncation=True, max_length=MAX_LENGTH, return_tensors="pt").to(device)
                try:
                    logits = model(**inputs).logits.float()
                except Exception as exc:
                    raise Rejected(f"{MODEL_DIR} failed on a batch: {type(exc).__name__}: {exc}") from exc
                if tuple(logits.shape) != (len(batch), NUM_LABELS):
                    raise Rejected(f"{MODEL_DIR} returned logits of shape {tuple(logits.shape)}, expected "
                                   f"({len(batch)}, {NUM_LABELS})")
                if not torch.isfinite(logits).all():
                    raise Rejected(f"{MODEL_DIR} returned NaN or infinite logits")
                labels = torch.tensor([r["label"] for r in batch], device=device)
                correct += int((logits.argmax(dim=-1) == labels).sum())
    except Rejected as exc:
        print(f"evaluation failed: {exc}", file=sys.stderr)
        report(error=str(exc), status=exc.status)
        return 1
    report(validation_accuracy=100.0 * correct / len(rows), correct=correct, pairs=len(rows), split=args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
