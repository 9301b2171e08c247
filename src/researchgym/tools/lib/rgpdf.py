"""Text of a PDF with page markers, capped: what `parse_pdf` shows (and what the host's offline
literature corpus indexes). Needs pypdf; everything else is the standard library."""

from __future__ import annotations

import io

DEFAULT_MAX_CHARS = 20_000


class PdfError(Exception):
    """The PDF cannot be read; the message says why."""


def page_range(text: str | None, pages: int) -> range:
    """`3`, `2-5` or `4-` (1-based, inclusive) as a range of page indices; None is every page."""
    if not text:
        return range(pages)
    first, dash, last = text.partition("-")
    try:
        start = int(first)
        end = int(last) if last else (pages if dash else start)
    except ValueError:
        raise PdfError(f"pages must look like 3, 2-5 or 4-, not {text!r}") from None
    if start < 1 or end < start:
        raise PdfError(f"pages {text!r} is not a range of pages (they are numbered from 1)")
    return range(start - 1, min(end, pages))


def pdf_pages(data: bytes) -> list[str]:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise PdfError("reading PDFs needs pypdf (in the researchgym clone: make install EXTRAS=literature)") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        return [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as exc:  # pypdf raises many kinds on broken files
        raise PdfError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None


def pdf_title(data: bytes) -> str:
    """The document's title: its metadata, else the first line of its first page."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        title = (reader.metadata.title if reader.metadata else None) or ""
    except Exception:
        title = ""
    if title.strip():
        return title.strip()
    pages = pdf_pages(data)
    first = next((line.strip() for line in (pages[0] if pages else "").splitlines() if line.strip()), "")
    return first[:200]


def pdf_text(data: bytes, *, pages: str | None = None, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """`--- page i of n ---` then the page's text, for the chosen pages, cut at max_chars."""
    found = pdf_pages(data)
    chosen = page_range(pages, len(found))
    parts = [f"--- page {index + 1} of {len(found)} ---\n{found[index]}" for index in chosen]
    text = "\n\n".join(parts) if parts else f"(the PDF has {len(found)} pages; none in the range {pages})"
    if len(text) > max_chars:
        rest = len(text) - max_chars
        text = text[:max_chars] + f"\n[... {rest} more characters cut; read on with --pages or a larger --max-chars]"
    return text
