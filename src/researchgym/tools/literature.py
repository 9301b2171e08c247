"""Literature search for agents, run on the host: online (Semantic Scholar, arXiv) or over a
local corpus (a folder of PDFs and JSONL abstracts) ranked with BM25.

Online search probes the APIs' hosts first, so a machine without network fails in about a
second with a message that points at the offline corpus, instead of hanging on retries.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from researchgym.hub import reachable
from researchgym.retrieval import BM25
from researchgym.tools.docs import TOOLS_LIB
from researchgym.tools.gateway import ToolFailure

SEMANTIC_SCHOLAR_URL = "https://api.semanticscholar.org/graph/v1/paper/search"
ARXIV_URL = "https://export.arxiv.org/api/query"
ATOM = "{http://www.w3.org/2005/Atom}"
ABSTRACT_CHARS = 600
USER_AGENT = "researchgym-literature-search"


@dataclass
class Paper:
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    url: str = ""
    source: str = ""
    #: Full text, for ranking a local corpus; never shown whole.
    text: str = ""


def rgpdf() -> ModuleType:
    """The PDF reader the sandbox's `parse_pdf` uses, loaded from tools/lib (one implementation)."""
    return _load_lib("rgpdf")


@cache
def _load_lib(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"researchgym_tools_{name}", TOOLS_LIB / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def format_papers(papers: list[Paper], where: str) -> str:
    if not papers:
        return f"No papers found ({where})."
    lines = [f"{len(papers)} paper(s) ({where}):"]
    for number, paper in enumerate(papers, 1):
        year = f" ({paper.year})" if paper.year else ""
        authors = ", ".join(paper.authors[:4]) + (" et al." if len(paper.authors) > 4 else "")
        lines.append(f"{number}. {paper.title}{year}" + (f" - {authors}" if authors else ""))
        if paper.url:
            lines.append(f"   {paper.url}")
        abstract = " ".join(paper.abstract.split())
        if abstract:
            cut = abstract[:ABSTRACT_CHARS] + ("..." if len(abstract) > ABSTRACT_CHARS else "")
            lines.append(f"   {cut}")
    return "\n".join(lines)


# -------------------------------------------------------------------- local corpus
class LocalCorpus:
    """Papers from a folder: every `*.pdf` (title from its metadata or first line) and every line
    of every `*.jsonl` (`title`, `abstract`, optional `authors`, `year`, `url`, `text`)."""

    def __init__(self, papers: list[Paper], folder: Path | None = None) -> None:
        self.papers = papers
        self.folder = folder
        self.index = BM25([f"{p.title}\n{p.title}\n{p.abstract}\n{p.text}" for p in papers])

    @classmethod
    def load(cls, folder: str | Path) -> LocalCorpus:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise ValueError(f"the literature corpus {folder} is not a folder (PDFs and/or JSONL abstracts)")
        papers: list[Paper] = []
        reader = rgpdf()
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() == ".pdf":
                data = path.read_bytes()
                try:
                    pages = reader.pdf_pages(data)
                    title = reader.pdf_title(data)
                except reader.PdfError as exc:
                    raise ValueError(f"{path}: {exc}") from None
                text = "\n".join(pages)
                papers.append(
                    Paper(
                        title or path.stem,
                        abstract=_abstract_of(text),
                        text=text,
                        url=str(path.relative_to(folder)),
                        source="local pdf",
                    )
                )
            elif path.suffix.lower() == ".jsonl":
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                        papers.append(
                            Paper(
                                str(row["title"]),
                                abstract=str(row.get("abstract", "")),
                                authors=tuple(str(a) for a in row.get("authors", [])),
                                year=int(row["year"]) if row.get("year") else None,
                                url=str(row.get("url", "")),
                                source="local abstract",
                                text=str(row.get("text", "")),
                            )
                        )
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ValueError(
                            f"{path}, line {number}: not a paper record ({exc}); each line "
                            'is {"title": ..., "abstract": ..., "authors": [...], "year": ...}'
                        ) from None
        return cls(papers, folder)

    def search(self, query: str, n: int) -> list[Paper]:
        return [self.papers[i] for i, score in self.index.top(query, n) if score > 0]


def _abstract_of(text: str) -> str:
    """The paragraph after an 'Abstract' heading, else the first 600 characters."""
    lower = text.lower()
    start = lower.find("abstract")
    body = text[start + len("abstract") :] if start >= 0 else text
    return " ".join(body.split())[: ABSTRACT_CHARS * 2]


# ------------------------------------------------------------------------- online
def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlparse(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _get(url: str, timeout: float, accept: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": accept})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read(8 * 1024 * 1024)


class OnlineSearch:
    """Semantic Scholar's paper search and arXiv's query API, merged (duplicates by title dropped)."""

    def __init__(
        self,
        sources: list[str],
        *,
        semantic_scholar_url: str = SEMANTIC_SCHOLAR_URL,
        arxiv_url: str = ARXIV_URL,
        timeout_s: float = 20.0,
    ) -> None:
        self.urls = {"semantic_scholar": semantic_scholar_url, "arxiv": arxiv_url}
        unknown = [s for s in sources if s not in self.urls]
        if unknown:
            raise ValueError(f"unknown literature source(s) {unknown}; known: {sorted(self.urls)}")
        self.sources = sources
        self.timeout_s = timeout_s

    def search(self, query: str, n: int, *, offline_hint: str) -> list[Paper]:
        reachable_sources = [s for s in self.sources if reachable(*_host_port(self.urls[s]))]
        if not reachable_sources:
            hosts = ", ".join(_host_port(self.urls[s])[0] for s in self.sources)
            raise ToolFailure(f"online literature search cannot reach {hosts} (no network here). {offline_hint}")
        papers: list[Paper] = []
        errors = []
        for source in reachable_sources:
            try:
                found = self._semantic_scholar(query, n) if source == "semantic_scholar" else self._arxiv(query, n)
            except (OSError, ValueError, ET.ParseError) as exc:
                errors.append(f"{source}: {exc}")
                continue
            seen = {p.title.lower() for p in papers}
            papers.extend(p for p in found if p.title.lower() not in seen)
        if not papers and errors:
            raise ToolFailure(f"online literature search failed ({'; '.join(errors)}). {offline_hint}")
        return papers[:n]

    def _semantic_scholar(self, query: str, n: int) -> list[Paper]:
        params = urllib.parse.urlencode({"query": query, "limit": n, "fields": "title,abstract,year,authors,url"})
        data = json.loads(_get(f"{self.urls['semantic_scholar']}?{params}", self.timeout_s, "application/json"))
        return [
            Paper(
                str(row.get("title") or ""),
                abstract=str(row.get("abstract") or ""),
                authors=tuple(a.get("name", "") for a in row.get("authors") or []),
                year=row.get("year"),
                url=str(row.get("url") or ""),
                source="semantic scholar",
            )
            for row in data.get("data") or []
            if row.get("title")
        ]

    def _arxiv(self, query: str, n: int) -> list[Paper]:
        params = urllib.parse.urlencode({"search_query": f"all:{query}", "start": 0, "max_results": n})
        root = ET.fromstring(_get(f"{self.urls['arxiv']}?{params}", self.timeout_s, "application/atom+xml"))
        papers = []
        for entry in root.iter(f"{ATOM}entry"):
            title = " ".join((entry.findtext(f"{ATOM}title") or "").split())
            published = entry.findtext(f"{ATOM}published") or ""
            papers.append(
                Paper(
                    title,
                    abstract=(entry.findtext(f"{ATOM}summary") or "").strip(),
                    authors=tuple(a.findtext(f"{ATOM}name") or "" for a in entry.iter(f"{ATOM}author")),
                    year=int(published[:4]) if published[:4].isdigit() else None,
                    url=(entry.findtext(f"{ATOM}id") or "").strip(),
                    source="arxiv",
                )
            )
        return [p for p in papers if p.title]


# ---------------------------------------------------------------------- fetching
def public_address(host: str) -> bool:
    """Whether every address `host` resolves to is public: the agent must not reach the host's
    own services (a model server on localhost, a cloud metadata endpoint) through the gateway."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return True  # unresolvable: the fetch itself will fail and say so
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved:
            return False
    return True


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a new request: its host must pass the same public-address check."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        host = urllib.parse.urlparse(newurl).hostname or ""
        if not self.allow_private and not public_address(host):
            raise ToolFailure(f"the download redirected to {host}, a local or private address; refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_pdf(url: str, *, max_bytes: int, timeout_s: float = 30.0, allow_private: bool = False) -> bytes:
    parts = urllib.parse.urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolFailure(f"{url!r} is not an http(s) URL")
    if not allow_private and not public_address(parts.hostname):
        raise ToolFailure(f"{parts.hostname} is a local or private address; only public URLs can be fetched")
    if not reachable(*_host_port(url)):
        raise ToolFailure(
            f"{parts.hostname} cannot be reached (no network here); copy the PDF into the "
            "workspace and run parse_pdf on its path"
        )
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/pdf"})
    opener = urllib.request.build_opener(_CheckedRedirects(allow_private))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            data = response.read(max_bytes + 1)
    except ToolFailure:
        raise
    except (OSError, urllib.error.URLError) as exc:
        raise ToolFailure(f"cannot download {url}: {exc}") from None
    if len(data) > max_bytes:
        raise ToolFailure(f"{url} is larger than the {max_bytes // (1024 * 1024)} MiB limit for PDFs")
    if not data.startswith(b"%PDF"):
        raise ToolFailure(f"{url} did not return a PDF (it starts with {data[:20]!r})")
    return data
