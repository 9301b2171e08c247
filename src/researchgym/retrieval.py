"""Okapi BM25 over a list of texts: ML-Bench's retrieval context and the offline literature
search both rank with it, so it lives here once."""

from __future__ import annotations

import math
import re
from collections import Counter

TOKEN = re.compile(r"[A-Za-z0-9_]+")


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text)]


class BM25:
    """An index of documents; `scores(query)` gives one score per document, in order."""

    def __init__(self, documents: list[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [Counter(tokens(d)) for d in documents]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.average = (sum(self.lengths) / len(self.lengths) if self.lengths else 0.0) or 1.0
        self.frequency = Counter(term for d in self.docs for term in d)

    def __len__(self) -> int:
        return len(self.docs)

    def idf(self, term: str) -> float:
        seen = self.frequency[term]
        return math.log(1 + (len(self.docs) - seen + 0.5) / (seen + 0.5))

    def scores(self, query: str) -> list[float]:
        terms = tokens(query)
        weights = {term: self.idf(term) for term in set(terms)}
        out = []
        for doc, length in zip(self.docs, self.lengths):
            total = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / self.average)
            for term in terms:
                tf = doc.get(term, 0)
                if tf:
                    total += weights[term] * tf * (self.k1 + 1) / (tf + norm)
            out.append(total)
        return out

    def top(self, query: str, n: int) -> list[tuple[int, float]]:
        """(document index, score) of the n best, best first; ties keep document order."""
        ranked = sorted(enumerate(self.scores(query)), key=lambda pair: (-pair[1], pair[0]))
        return ranked[: max(n, 0)]
