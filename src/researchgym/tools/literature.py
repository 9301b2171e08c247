"""Literature search for agents, run on the host: online (Semantic Scholar, arXiv) or over a
local corpus (a folder of PDFs and JSONL abstracts) ranked with BM25.

Online search probes the APIs' hosts first, so a machine without network fails in about a
second with a message that points at the offline corpus, instead of hanging on retries.
"""

from __future__ import annotations

import http.client
import importlib.util
import ipaddress
import json
import re
import socket
import ssl
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from researchgym.hub import PROBE_TIMEOUT_S, reachable
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
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_MEDIA_TYPE = re.compile(r"[\w.+-]{1,40}/[\w.+-]{1,60}")

Address = tuple[int, tuple[Any, ...]]  # (address family, socket address), as getaddrinfo gives them


def forbidden_address(address: str) -> bool:
    """Whether a connection to `address` (a resolved IP) could reach the host's own services (a
    model server on localhost, a cloud metadata endpoint) or its private network. IPv6 forms
    that carry an IPv4 address (mapped, 6to4, NAT64) are judged by that address as well."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    judged: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return True
        judged += [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
        if ip in _NAT64:
            judged.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return any(
        not a.is_global or a.is_multicast or a.is_reserved or a.is_loopback or a.is_link_local or a.is_unspecified
        for a in judged
    )


def _resolve(host: str, port: int) -> list[Address]:
    """Every address `host` has, looked up once: the fetch checks all of them and then connects
    to one of exactly these (never to a second answer, which a rebinding name would change)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [(info[0], info[4]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def _open(addresses: list[Address], connect_timeout: float, timeout: float) -> socket.socket:
    """A TCP connection to the first of `addresses` (all checked already) that accepts one."""
    failure: OSError = OSError("no address to connect to")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        sock.settimeout(timeout)
        return sock
    raise failure


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP over a socket already connected to a checked address. `host` names the server in the
    Host header only; nothing here resolves it again."""

    def __init__(self, host: str, port: int, sock: socket.socket, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pinned = sock

    def connect(self) -> None:
        self.sock = self._pinned


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS over a socket already connected to a checked address; TLS sends the name (SNI) and
    checks the certificate against it, as for any HTTPS request."""

    def __init__(self, host: str, port: int, sock: socket.socket, timeout: float, tls: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._pinned = sock
        self._tls = tls

    def connect(self) -> None:
        self.sock = self._tls.wrap_socket(self._pinned, server_hostname=self.host)


def _unreachable(host: str) -> ToolFailure:
    return ToolFailure(
        f"{host} cannot be reached (no network here?); copy the PDF into the workspace and run parse_pdf on its path"
    )


def _media_type(content_type: str) -> str:
    """The server's declared type, if it is a plain `type/subtype` (nothing else of it is echoed)."""
    declared = content_type.split(";", 1)[0].strip()
    return declared if _MEDIA_TYPE.fullmatch(declared) else "an undeclared type"


def fetch_pdf(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float = 30.0,
    allow_private: bool = False,
    forbidden: Callable[[str], bool] | None = None,
) -> bytes:
    """Download a PDF for the agent without opening a door to the host's network.

    Each hop (the URL, then every redirect) resolves its host once, is refused if any of the
    addresses is local or private (unless `allow_private`), and connects to exactly one of the
    addresses it checked: a name that answers differently the next time (DNS rebinding) is
    never looked up again. Proxies are not used, since a proxy would resolve the name where no
    check sees it. Nothing of a refused answer's body is shown. `forbidden` replaces the address
    policy (`forbidden_address`); tests use it to let a loopback address stand in for a public one.
    """
    is_forbidden = forbidden or forbidden_address
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            if hop:
                raise ToolFailure(f"the download redirected to {current[:200]!r}, not an http(s) URL; refused")
            raise ToolFailure(f"{url!r} is not an http(s) URL")
        try:
            host = parts.hostname if parts.hostname.isascii() else parts.hostname.encode("idna").decode("ascii")
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except (ValueError, UnicodeError):
            raise ToolFailure(f"{current[:200]!r} does not name a valid host and port") from None
        addresses = _resolve(host, port)
        if not addresses:
            raise _unreachable(host)
        if not allow_private:
            for _family, sockaddr in addresses:
                if is_forbidden(sockaddr[0]):
                    named = host if host == sockaddr[0] else f"{host} ({sockaddr[0]})"
                    if hop:
                        raise ToolFailure(f"the download redirected to {named}, a local or private address; refused")
                    raise ToolFailure(f"{named} is a local or private address; only public URLs can be fetched")
        try:
            sock = _open(addresses, min(timeout_s, PROBE_TIMEOUT_S), timeout_s)
        except OSError:
            raise _unreachable(host) from None
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = _PinnedHTTPSConnection(host, port, sock, timeout_s, ssl.create_default_context())
        else:
            connection = _PinnedHTTPConnection(host, port, sock, timeout_s)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", target, headers={"User-Agent": USER_AGENT, "Accept": "application/pdf"})
            response = connection.getresponse()
            if response.status in REDIRECT_STATUSES:
                location = response.getheader("Location")
                if not location:
                    raise ToolFailure(f"cannot download {url}: a redirect ({response.status}) without a location")
                current = urllib.parse.urljoin(current, location.strip())
                continue
            if not 200 <= response.status < 300:
                raise ToolFailure(f"cannot download {url}: the server answered HTTP {response.status}")
            declared = response.getheader("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                data, too_large = b"", True  # not read at all
            else:
                data = response.read(max_bytes + 1)
                too_large = len(data) > max_bytes
            content_type = response.getheader("Content-Type", "")
        except OSError as exc:
            raise ToolFailure(f"cannot download {url}: {exc}") from None
        except http.client.HTTPException as exc:  # its message may quote the answer: name the kind only
            raise ToolFailure(f"cannot download {url}: the answer is not valid HTTP ({type(exc).__name__})") from None
        finally:
            connection.close()
            sock.close()
        if too_large:
            raise ToolFailure(f"{url} is larger than the {max_bytes // (1024 * 1024)} MiB limit for PDFs")
        if not data.startswith(b"%PDF"):
            raise ToolFailure(f"{url} did not return a PDF (it sent {len(data)} bytes of {_media_type(content_type)})")
        return data
    raise ToolFailure(f"{url} redirected more than {MAX_REDIRECTS} times; refused")
