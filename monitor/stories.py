"""cluster: which story does an article report on? Pure decisions over term vectors.

An article is a TF-IDF vector of its terms: entities count double (they tell one event from
another of the same kind), title words count double (the headline names the event).
A story is the sum of its articles' vectors. The article joins the most similar candidate
story (cosine) if it is similar enough, else it opens a new story. Candidates come from
the inverted index (storage/story_index.py), never from a scan of all stories.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from monitor.claims import analyse, key
from monitor.model import Claim

# Cosine similarity at which an article joins a story. Measured on the ECB+ dev set and the
# seeds (bench/story_grouping.py); see docs/quality.md.
SAME_STORY = 0.22
ENTITY_WEIGHT = 2.0
TITLE_WEIGHT = 2.0
QUERY_TERMS = 20  # the article's strongest terms used to look up candidate stories


@dataclass(frozen=True)
class Candidate:
    story_id: int
    dot: float  # Σ article weight × story weight over shared terms
    mass: float  # Σ story weight², the story vector's squared norm


def term_counts(title: str, claims: list[Claim]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for claim in [analyse(title), *claims] if title else claims:
        boost = TITLE_WEIGHT if claim.text == title else 1.0
        for term in claim.terms:
            if term.startswith("n:"):
                continue  # figures change as a story develops; they do not identify it
            counts[key(term)] += boost * (ENTITY_WEIGHT if term.startswith("e:") else 1.0)
    return counts


def idf(df: int, documents: int) -> float:
    return math.log((documents + 1) / (df + 1)) + 1.0


def vector(counts: Counter[str], dfs: dict[str, int], documents: int) -> dict[str, float]:
    """Sub-linear TF × IDF, unit length."""
    weights = {t: (1.0 + math.log(c)) * idf(dfs.get(t, 0), documents) for t, c in counts.items()}
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {t: w / norm for t, w in weights.items()}


def query_terms(vec: dict[str, float]) -> list[str]:
    return [t for t, _ in sorted(vec.items(), key=lambda item: -item[1])[:QUERY_TERMS]]


def choose_story(candidates: list[Candidate]) -> tuple[int | None, float]:
    """The best candidate story and its cosine, or (None, best cosine) for a new story."""
    best_id, best = None, 0.0
    for candidate in candidates:
        cosine = candidate.dot / math.sqrt(candidate.mass) if candidate.mass > 0 else 0.0
        if cosine > best:
            best_id, best = candidate.story_id, cosine
    return (best_id, best) if best >= SAME_STORY else (None, best)
