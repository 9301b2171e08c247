"""The host-side research tools of a run (memory, literature search, PDF fetching): their
configuration, and the gateway that serves them to one episode.

Commands whose header says `requires: memory` (or `literature`) are shown to agents only when
the run enables that group; the environment reports the enabled groups in its reset info.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from researchgym.datasets import cache_root
from researchgym.tools.gateway import GatewayTool, ToolFailure, ToolGateway
from researchgym.tools.literature import (
    ARXIV_URL,
    SEMANTIC_SCHOLAR_URL,
    LocalCorpus,
    OnlineSearch,
    fetch_pdf,
    format_papers,
)
from researchgym.tools.memory import Embedder, MemoryStore, MiniLMEmbedder


class MemoryToolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    #: `episode`: a fresh memory per episode. `task`: shared by every episode of the task.
    scope: Literal["episode", "task"] = "episode"
    #: Entries `memory_read` returns when the agent does not say (MLGym: 2).
    k: int = Field(2, ge=1, le=50)
    #: Where task-scoped memories live (`<directory>/<task id>.jsonl`); default
    #: `<run>/memory` for runs, else `$RESEARCHGYM_CACHE/memory`.
    directory: Path | None = None
    max_entries: int = Field(1000, ge=1)
    max_chars: int = Field(4000, ge=10)


LiteratureSource = Literal["semantic_scholar", "arxiv"]
ALL_LITERATURE_SOURCES: tuple[LiteratureSource, ...] = ("semantic_scholar", "arxiv")


class LiteratureToolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    #: A folder of PDFs and/or JSONL abstracts for offline search.
    corpus: Path | None = None
    #: Search only the corpus (as if every call said --offline).
    offline: bool = False
    sources: list[LiteratureSource] = Field(default_factory=lambda: list(ALL_LITERATURE_SOURCES))
    semantic_scholar_url: str = SEMANTIC_SCHOLAR_URL
    arxiv_url: str = ARXIV_URL
    timeout_s: float = Field(20.0, gt=0)
    max_results: int = Field(20, ge=1, le=100)
    max_pdf_mb: float = Field(20.0, gt=0)


class ResearchToolsConfig(BaseModel):
    """Which host tools a run gives its agents (all off by default)."""

    model_config = ConfigDict(extra="forbid")

    memory: MemoryToolConfig = Field(default_factory=MemoryToolConfig)
    literature: LiteratureToolConfig = Field(default_factory=LiteratureToolConfig)
    #: Gateway calls one episode may make.
    max_calls: int = Field(1000, ge=1)

    @property
    def groups(self) -> list[str]:
        return [name for name, part in (("memory", self.memory), ("literature", self.literature)) if part.enabled]

    def memory_path(self, task_id: str) -> Path | None:
        if self.memory.scope != "task":
            return None
        folder = self.memory.directory or cache_root() / "memory"
        return Path(folder).expanduser() / f"{task_id}.jsonl"

    def check(self) -> None:
        """Fail at configuration time, not on the agent's first call."""
        if self.memory.enabled:
            MiniLMEmbedder._load()
        if self.literature.enabled and self.literature.corpus is not None:
            corpus = Path(self.literature.corpus).expanduser()
            if not corpus.is_dir():
                raise ValueError(f"literature.corpus: {corpus} is not a folder (PDFs and/or JSONL abstracts)")


def _int(args: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ToolFailure(f"{name} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise ToolFailure(f"{name} must be between {low} and {high}, not {number}")
    return number


def _text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolFailure(f"{name} is required (a non-empty text)")
    return value


def _tags(args: dict[str, Any]) -> list[str]:
    tags = args.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ToolFailure("tags must be a list of words")
    return tags


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


class EpisodeServices:
    """The gateway of one episode and the stores behind it. `step()` says which step is running."""

    def __init__(
        self,
        config: ResearchToolsConfig,
        *,
        task_id: str,
        episode_id: str,
        step: Callable[[], int],
        embedder: Embedder | None = None,
    ) -> None:
        self.config = config
        self.episode_id = episode_id
        self._step = step
        self.memory: MemoryStore | None = None
        self._corpus: LocalCorpus | None = None
        tools: list[GatewayTool] = []
        if config.memory.enabled:
            self.memory = MemoryStore(
                embedder or MiniLMEmbedder(),
                config.memory_path(task_id),
                max_entries=config.memory.max_entries,
                max_chars=config.memory.max_chars,
            )
            tools += [
                GatewayTool("memory_write", self._memory_write, max_request_bytes=4 * config.memory.max_chars + 4096),
                GatewayTool("memory_read", self._memory_read, max_request_bytes=16 * 1024),
            ]
        if config.literature.enabled:
            lit = config.literature
            self._online = OnlineSearch(
                list(lit.sources),
                semantic_scholar_url=lit.semantic_scholar_url,
                arxiv_url=lit.arxiv_url,
                timeout_s=lit.timeout_s,
            )
            tools += [
                GatewayTool("literature_search", self._literature_search, max_request_bytes=8 * 1024),
                GatewayTool("fetch_pdf", self._fetch_pdf, max_request_bytes=8 * 1024),
            ]
        self.gateway = ToolGateway(tools, max_calls=config.max_calls) if tools else None

    # ----------------------------------------------------------------- handlers
    def _memory_write(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self.memory is not None
        try:
            entry = self.memory.write(_text(args, "text"), tags=_tags(args), step=self._step(), episode=self.episode_id)
        except ValueError as exc:
            raise ToolFailure(str(exc)) from None
        tags = f" tagged {', '.join(entry.tags)}" if entry.tags else ""
        return {"output": f"Saved memory #{entry.id}{tags}. The memory holds {_entries(len(self.memory))}."}

    def _memory_read(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self.memory is not None
        k = _int(args, "k", self.config.memory.k, 1, 50)
        found = self.memory.read(_text(args, "query"), k=k, tags=_tags(args))
        if not found:
            return {"output": f"No memories match (the memory holds {_entries(len(self.memory))}).", "entries": []}
        lines = [f"{len(found)} most similar of {len(self.memory)} memories:"]
        for entry, similarity in found:
            tags = f" [{', '.join(entry.tags)}]" if entry.tags else ""
            lines.append(f"#{entry.id} (similarity {similarity:.3f}, step {entry.step}){tags}: {entry.text}")
        return {
            "output": "\n".join(lines),
            "entries": [{"id": e.id, "text": e.text, "similarity": round(s, 4)} for e, s in found],
        }

    def corpus(self) -> LocalCorpus | None:
        if self._corpus is None and self.config.literature.corpus is not None:
            try:
                self._corpus = LocalCorpus.load(self.config.literature.corpus)
            except ValueError as exc:
                raise ToolFailure(str(exc)) from None
        return self._corpus

    def _literature_search(self, args: dict[str, Any]) -> dict[str, Any]:
        lit = self.config.literature
        query = _text(args, "query")
        n = _int(args, "n", 5, 1, lit.max_results)
        offline = bool(args.get("offline")) or lit.offline
        corpus = self.corpus() if offline or lit.corpus is not None else None
        if offline:
            if corpus is None:
                raise ToolFailure(
                    "offline literature search needs a local corpus, and this run has none "
                    "(give the run a folder of PDFs or JSONL abstracts: --literature-corpus DIR)"
                )
            papers = corpus.search(query, n)
            return {"output": format_papers(papers, f"local corpus of {len(corpus.papers)} papers")}
        hint = (
            f"Use `literature_search --offline {query}` to search this run's local corpus "
            f"({len(corpus.papers)} papers)."
            if corpus is not None
            else "Use `literature_search --offline ...` with a local corpus (the run's --literature-corpus DIR)."
        )
        papers = self._online.search(query, n, offline_hint=hint)
        return {"output": format_papers(papers, "Semantic Scholar and arXiv")}

    def _fetch_pdf(self, args: dict[str, Any]) -> dict[str, Any]:
        max_bytes = int(self.config.literature.max_pdf_mb * 1024 * 1024)
        allow_private = os.environ.get("RESEARCHGYM_FETCH_ALLOW_PRIVATE") == "1"  # for tests on localhost
        data = fetch_pdf(
            _text(args, "url"),
            max_bytes=max_bytes,
            timeout_s=self.config.literature.timeout_s,
            allow_private=allow_private,
        )
        return {"data": base64.b64encode(data).decode(), "bytes": len(data)}

    # -------------------------------------------------------------------- host
    def footer(self) -> str:
        return f"(Memory: {_entries(len(self.memory))})" if self.memory is not None else ""

    def drain(self) -> list[dict[str, Any]]:
        return self.gateway.drain() if self.gateway else []

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.close()
            self.gateway = None
