"""What the model is shown in ML-Bench's LLM setting: four kinds of context.

* `code`: the repository's text, READMEs first (shallowest first), then documentation and
  source files, cut at a character budget (ML-Bench used 100k for 32k-token models, 400k for
  128k-token models).
* `retrieval`: the window of 10 consecutive sentences of the repository's text that BM25 scores
  highest against the instruction.
* `oracle`: the sample's README segment.
* `instruction`: nothing but the instruction.
"""

from __future__ import annotations

import re
from pathlib import Path

from researchgym.mlbench.schema import Sample
from researchgym.retrieval import BM25

SETTINGS = ("code", "retrieval", "oracle", "instruction")
TEXT_SUFFIXES = {".md", ".rst", ".txt", ".py", ".sh", ".yaml", ".yml", ".cfg", ".toml", ".json"}
DOC_SUFFIXES = {".md", ".rst", ".txt"}
SKIP_DIRS = {".git", "__pycache__", "node_modules", ".github", "build", "dist"}
MAX_FILE_CHARS = 200_000


def repository_files(repo: Path) -> list[Path]:
    """Text files in reading order: READMEs (shallowest first), other docs, then the rest."""
    files = [
        p
        for p in repo.rglob("*")
        if p.is_file()
        and p.suffix.lower() in TEXT_SUFFIXES
        and not any(part in SKIP_DIRS for part in p.relative_to(repo).parts)
    ]

    def rank(path: Path) -> tuple[int, int, str]:
        relative = path.relative_to(repo)
        kind = 0 if path.stem.lower() == "readme" else 1 if path.suffix.lower() in DOC_SUFFIXES else 2
        return kind, len(relative.parts), str(relative)

    return sorted(files, key=rank)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[:MAX_FILE_CHARS]
    except OSError:
        return ""


def code_context(repo: Path, budget_chars: int = 100_000) -> str:
    parts, used = [], 0
    for path in repository_files(repo):
        block = f"### {path.relative_to(repo)}\n{_read(path)}\n"
        if used + len(block) > budget_chars:
            parts.append(block[: max(0, budget_chars - used)])
            break
        parts.append(block)
        used += len(block)
    return "".join(parts)


def sentences(text: str) -> list[str]:
    pieces = re.split(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*#>]|\s*\$ |\s*python )", text)
    return [p.strip() for p in pieces if p and p.strip()]


def bm25_window(repo: Path, query: str, *, window: int = 10, k1: float = 1.5, b: float = 0.75) -> str:
    """The `window` consecutive sentences (within one file) that BM25 ranks highest for `query`."""
    windows: list[str] = []
    for path in repository_files(repo):
        found = sentences(_read(path))
        step = max(1, window // 2)
        for start in range(0, max(1, len(found) - window + step), step):
            chunk = found[start : start + window]
            if chunk:
                windows.append(f"({path.relative_to(repo)})\n" + "\n".join(chunk))
    if not windows:
        return ""
    index = BM25(windows, k1=k1, b=b)
    best, _score = index.top(query, 1)[0]
    return windows[best]


def build_context(sample: Sample, repo: Path | None, setting: str, *, budget_chars: int = 100_000) -> str:
    if setting not in SETTINGS:
        raise ValueError(f"unknown context setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if setting == "oracle":
        return sample.oracle
    if setting == "instruction":
        return ""
    if repo is None:
        raise ValueError(f"the {setting} setting needs the repository's files")
    return code_context(repo, budget_chars) if setting == "code" else bm25_window(repo, sample.instruction)
