"""diff: what does a new report add to its story?

Pure functions. Each sentence of the new article (a Claim) is matched against every claim
the story already holds. The question asked is asymmetric — "how much of what this sentence
says was already said?" — so the measure is *coverage*: the weighted share of the new
sentence's units (entities, numbers, dates, stemmed words) found in an earlier sentence.
Entities, numbers and dates weigh more than ordinary words (claims.term_weight).

A sentence is a development when it carries a fact and is neither covered by one earlier
sentence (COVERED) nor assembled from what the story said across sentences (UNION_COVERED).
Sentences of one article that elaborate the same new thing are folded into one development.
The whole story is compared at once with a matrix product, not a Python loop over claims.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process
from threadpoolctl import ThreadpoolController

from monitor import figures
from monitor.claims import analyse, key, term_weight
from monitor.model import Claim, Finding, Kind, KnownClaim

# A sentence is "already said" when one earlier sentence covers this share of its weight
# (weights scaled by the story's inverse sentence frequency, see diff_article). A paraphrase
# keeps the actors and the core words ("Waltz expects Zelensky to sign" vs "Waltz … his
# belief that President Zelenskyy would ultimately sign the minerals deal": 0.49 and 0.76 in
# the two seed orders), while the seeds' new facts stay at or below 0.34 (tests/test_seeds.py).
COVERED = 0.4
# … or when the story as a whole already holds this share (a recombination of known facts).
UNION_COVERED = 0.85
# … or when two earlier sentences together cover this share.
PAIR_COVERED = 0.65
# A figure the story never had ("$500 billion") is news unless one earlier sentence says
# nearly all the rest.
FIGURE_COVERED = 0.75
# A sentence whose words (figures aside) an earlier one covers this much, and whose figure
# counts the same thing with another value, reports a changed figure.
FIGURE_CONTEXT = 0.45
# Closest earlier sentences kept as a development's evidence (`developments show`).
EVIDENCE = 3
# With the semantic extra: an earlier sentence this close in meaning (cosine of MiniLM
# embeddings) has already said it, whatever the words; two new sentences of one article this
# close tell the same new thing. Set on bench/quality.py's labelled cases (docs/quality.md).
SEMANTIC_COVERED = 0.7
SEMANTIC_SAME = 0.6
# … but only when the words overlap at least this much: embeddings alone also find "close"
# a sentence that adds a new detail to a known frame.
SEMANTIC_LEXICAL_FLOOR = 0.2
# A known claim from another outlet that covers this much of a sentence corroborates it.
CORROBORATES = 0.6
# Two entity spellings this close (rapidfuzz ratio, 0–100) are one entity: Zelenskyi / Zelensky.
SAME_ENTITY = 88
# Sentences of one article further apart than this are separate developments even when they
# share a new word; reports elaborate a new fact in the sentences right after it.
MERGE_DISTANCE = 3


@dataclass
class SentenceMatch:
    """Why one sentence of the new article is or is not new."""

    position: int
    closest: KnownClaim | None
    similarity: float  # coverage by the closest earlier claim, 0..1
    union: float  # coverage by the story as a whole
    new: bool
    pair: float = 0.0  # coverage by the best two earlier claims together
    finding: int | None = None  # index into Diff.findings


@dataclass
class Diff:
    findings: list[Finding] = field(default_factory=list)
    matches: list[SentenceMatch] = field(default_factory=list)
    corroborated: set[int] = field(default_factory=set)  # development ids this article repeats


def known_terms(known: KnownClaim) -> list[str]:
    return known.norm.split()


@lru_cache(maxsize=20_000)
def _norm_keys(norm: str) -> frozenset[str]:
    """The matching keys of a stored claim. Cached: a story's claims are compared again with
    each of its later reports, and a frozenset intersects with an article's vocabulary in C."""
    return frozenset(key(t) for t in norm.split())


class StoryKeys:
    """What the diff needs of a story's claims: each matching key, and the claims (positions
    in the known list) that have it. Kept with the claims and extended as the story grows
    (storage/known_claims.py), so that comparing an article with a long story costs what the
    article has, not what the story has: no Python loop over the story's sentences."""

    def __init__(self, known: Iterable[KnownClaim] = ()) -> None:
        self.postings: dict[str, list[int]] = {}
        self.size = 0  # claims indexed
        self._spellings: list[str] = []
        self._new_spellings: list[str] = []  # keys added since _spellings was sorted
        self.extend(known)

    def extend(self, known: Iterable[KnownClaim]) -> None:
        """Index claims that come after those indexed (their positions follow on)."""
        postings = self.postings
        for claim in known:
            for k in _norm_keys(claim.norm):
                rows = postings.get(k)
                if rows is None:
                    postings[k] = [self.size]
                    if len(k) >= 5 and ":" not in k:
                        self._new_spellings.append(k)
                else:
                    rows.append(self.size)
            self.size += 1

    def spellings(self) -> list[str]:
        """The keys an unknown name may be a variant spelling of (sorted: ties not by hash order)."""
        if self._new_spellings:
            # Sorted already but for the few keys each article adds: Python's sort merges the two
            # runs in linear time, where sorting a long story's keys afresh per article did not.
            self._new_spellings.sort()
            self._spellings = sorted([*self._spellings, *self._new_spellings])
            self._new_spellings = []
        return self._spellings


def _unify_spellings(new_keys: set[str], story: StoryKeys) -> dict[str, str]:
    """Map a new entity key to an old one spelt a little differently (rapidfuzz ratio)."""
    unknown = [k for k in new_keys if k not in story.postings and len(k) >= 5 and ":" not in k]
    if not unknown or not story.postings:
        return {}
    candidates = story.spellings()
    if not candidates:
        return {}
    # Every unknown word against every candidate in one call; below the cutoff a score is 0.
    scores = process.cdist(unknown, candidates, scorer=fuzz.ratio, score_cutoff=SAME_ENTITY, dtype=np.float64)
    best = scores.argmax(axis=1)  # the first of equal scores, as extractOne takes it
    mapping = {}
    for word, column, score in zip(unknown, best, scores[np.arange(len(unknown)), best], strict=True):
        if score > 0 and candidates[column][0] == word[0]:
            mapping[word] = candidates[column]
    return mapping


@dataclass(frozen=True)
class Semantic:
    """Sentence-embedding cosines from the optional semantic extra (monitor/semantic.py)."""

    known: np.ndarray  # the article's sentences × the story's sentences
    within: np.ndarray  # the article's sentences × themselves


# An article's sentences × a story's claims are small matrices: starting BLAS threads for
# them costs more than the product (4 of 5 ms per article on two cores), so one thread.
_BLAS = ThreadpoolController()


def diff_article(
    claims: list[Claim],
    known: list[KnownClaim],
    source: str,
    title: str,
    semantic: Semantic | None = None,
    keys: StoryKeys | None = None,
) -> Diff:
    """Decide which sentences of an article are developments of its story. `keys`: the
    known claims' StoryKeys when the caller keeps them (built here otherwise)."""
    if keys is None or keys.size != len(known):
        keys = StoryKeys(known)
    with _BLAS.limit(limits=1, user_api="blas"):
        return _diff_article(claims, known, source, title, semantic, keys)


def _diff_article(claims: list[Claim], known: list[KnownClaim], source: str, title: str,
                  semantic: Semantic | None, keys: StoryKeys) -> Diff:
    diff = Diff()
    if not known:
        best = max((c.salience for c in claims), default=0.3)
        diff.findings.append(Finding(kind=Kind.NEW_STORY, text=title, score=max(0.3, best),
                                     claim_positions=list(range(len(claims)))))
        diff.matches = [SentenceMatch(i, None, 0.0, 0.0, False, 0) for i in range(len(claims))]
        return diff
    if not claims:
        return diff

    old_keys = keys.postings  # membership: "did the story ever say this key?"
    new_entity_keys = {key(t) for c in claims for t in c.entities}
    respell = _unify_spellings(new_entity_keys, keys)

    def keys_of(claim: Claim) -> dict[str, float]:
        weights: dict[str, float] = {}
        for term in claim.terms:
            k = key(term)
            k = respell.get(k, k)
            weights[k] = max(weights.get(k, 0.0), term_weight(term))
        return weights

    new_weights = [keys_of(c) for c in claims]
    vocab = sorted(set().union(*new_weights))
    index = {k: i for i, k in enumerate(vocab)}
    N = np.zeros((len(claims), len(vocab)))
    for row, weights in enumerate(new_weights):
        for k, w in weights.items():
            N[row, index[k]] = w
    K = np.zeros((len(known), len(vocab)))
    rows, cols = [], []
    for column, k in enumerate(vocab):  # the article's keys, each with the claims that have it
        having = old_keys.get(k)
        if having:
            rows += having
            cols += [column] * len(having)
    K[rows, cols] = 1.0
    # Words the story repeats in many sentences are its background ("Ukraine", "agreement");
    # what distinguishes a sentence are the words the story rarely or never used. So each
    # unit's weight is scaled by its inverse frequency among the story's sentences.
    story_df = K.sum(axis=0)
    N *= np.log((len(known) + 1) / (story_df + 1)) + 1.0
    # Dates are left out of coverage: a known event reported with its date is not a new
    # event ("February 15: Zelenskyy declined to sign…" after "Zelensky refused to sign…").
    N[:, [index[k] for k in vocab if k.startswith("d:")]] = 0.0
    totals = N.sum(axis=1)
    totals[totals == 0] = 1.0
    coverage = (N @ K.T) / totals[:, None]
    union = (N @ K.max(axis=0)) / totals
    best = coverage.argmax(axis=1)
    # What the best claim leaves uncovered, covered by a second claim: a sentence that joins
    # two known statements ("the original deal … was met with resistance by Zelenskyy, who
    # emphasized the need for security guarantees") says nothing new either.
    residual = N * (1.0 - K[best])
    pair = coverage[np.arange(len(claims)), best] + ((residual @ K.T) / totals[:, None]).max(axis=1)

    # Coverage without figures either: "43 people were killed" after "24 people were killed"
    # says the same thing about a different number — a changed figure, not a new fact.
    N_core = N.copy()
    N_core[:, [index[k] for k in vocab if k.startswith("n:")]] = 0.0
    core_totals = N_core.sum(axis=1)
    core_totals[core_totals == 0] = 1.0
    core = (N_core @ K.T) / core_totals[:, None]
    figure_changes = _figure_changes(claims, known, core, old_keys)

    novel_sets: list[set[str]] = []
    for i, claim in enumerate(claims):
        sim = float(coverage[i, best[i]])
        closest = known[int(best[i])]
        novel_figure = any(key(n) not in old_keys for n in claim.numbers)
        said_otherwise = semantic is not None and float(semantic.known[i].max()) >= SEMANTIC_COVERED \
            and sim >= SEMANTIC_LEXICAL_FLOOR
        if said_otherwise and float(semantic.known[i].max()) > sim:
            closest = known[int(semantic.known[i].argmax())]
        is_new = claim.factual and (
            (sim < COVERED and float(pair[i]) < PAIR_COVERED and float(union[i]) < UNION_COVERED
             and not said_otherwise)
            or (novel_figure and sim < FIGURE_COVERED)
            or i in figure_changes
        )
        if i in figure_changes:
            sim, closest = figure_changes[i][1], figure_changes[i][0]
        diff.matches.append(SentenceMatch(i, closest, sim, float(union[i]), is_new, pair=float(pair[i])))
        novel_sets.append({k for k in new_weights[i] if k not in old_keys})
        if not is_new and sim >= CORROBORATES and closest.development_id and closest.source != source:
            diff.corroborated.add(closest.development_id)

    _group_new_sentences(diff, claims, novel_sets, figure_changes, old_keys,
                         semantic.within if semantic is not None else None)
    for finding in diff.findings:
        first = finding.claim_positions[0]
        order = np.argsort(-coverage[first])[:EVIDENCE]
        finding.details["evidence"] = [
            {"text": known[int(j)].text, "similarity": round(float(coverage[first, j]), 3),
             "source": known[int(j)].source} for j in order if coverage[first, j] > 0
        ]
    return diff


def _figure_changes(claims: list[Claim], known: list[KnownClaim], core: np.ndarray,
                    old_keys: Container[str]) -> dict[int, tuple[KnownClaim, float, list[tuple[str, str]]]]:
    """Sentences whose figure replaces an earlier one about the same thing: position →
    (the earlier claim, how much of the rest it covers, [(old, new) figure tokens])."""
    changes = {}
    for i, claim in enumerate(claims):
        if not claim.factual or not any(key(n) not in old_keys for n in claim.numbers):
            continue
        for j in np.argsort(-core[i])[:3]:
            if core[i, j] < FIGURE_CONTEXT:
                break
            pairs = figures.changed_pairs(claim, analyse(known[int(j)].text))
            if pairs:
                changes[i] = (known[int(j)], float(core[i, j]), pairs)
                break
    return changes


def _conflicting(a: Claim, b: Claim) -> bool:
    """Two dated (or counted) sentences about different dates (figures) are distinct events."""
    return bool((a.dates and b.dates and not a.dates & b.dates) or
                (a.numbers and b.numbers and not a.numbers & b.numbers))


_CONTINUATION = re.compile(
    r"^(?:(?:however|but|and|also|still|moreover|meanwhile|instead),?\s+)?"
    r"(?:he|she|they|it|this|these|his|her|their)\b", re.IGNORECASE)


def _continues(text: str) -> bool:
    """Opens with a pronoun (after an optional connective): it elaborates the sentence before."""
    return bool(_CONTINUATION.match(text.lstrip("–—-• ")))


def _group_new_sentences(diff: Diff, claims: list[Claim], novel: list[set[str]],
                         figure_changes: dict, old_keys: Container[str], within: np.ndarray | None) -> None:
    groups: list[list[int]] = []
    for match in diff.matches:
        if not match.new:
            continue
        i = match.position
        if i in figure_changes:
            groups.append([i])  # a changed figure is reported on its own, old and new value named
            continue
        target = None
        best_share = 0.0
        for g, members in enumerate(groups):
            if i - members[-1] > MERGE_DISTANCE:
                continue
            if any(_conflicting(claims[i], claims[m]) for m in members):
                continue
            if claims[i].dates and not any(claims[i].dates & claims[m].dates for m in members):
                continue  # a dated sentence reports its own event (a timeline entry)
            shared = {k for m in members for k in novel[m]} & novel[i]
            share = sum(1.0 for k in shared if not k.startswith(("n:", "d:")))
            if within is not None and max(float(within[i, m]) for m in members) >= SEMANTIC_SAME:
                share += 1.0  # the embeddings say the two sentences tell the same thing
            if share >= 1.0 and share > best_share:
                target, best_share = g, share
        if _continues(claims[i].text) and groups and groups[-1][-1] == i - 1 \
                and not _conflicting(claims[i], claims[i - 1]):
            target = len(groups) - 1  # "However, he emphasized …" goes on about the sentence before
        if target is None:
            groups.append([i])
        else:
            groups[target].append(i)
    for members in groups:
        first = diff.matches[members[0]]
        novelty = 1.0 - min(diff.matches[m].similarity for m in members)
        salience = max(claims[m].salience for m in members)
        kind, details = Kind.NEW_FACT, {}
        if members[0] in figure_changes:
            earlier, _, pairs = figure_changes[members[0]]
            kind = Kind.CHANGED_FIGURE
            details = {"figures": [{"old": figures.readable(o), "new": figures.readable(n)} for o, n in pairs],
                       "earlier": earlier.text}
        elif any(key(d) not in old_keys for d in claims[members[0]].dates):
            kind = Kind.NEW_DATE
            details = {"dates": sorted(d[2:] for d in claims[members[0]].dates if d not in old_keys)}
        finding = Finding(
            kind=kind,
            details=details,
            text=" ".join(claims[m].text for m in members),
            score=round(min(1.0, salience * (0.6 + 0.4 * novelty)), 3),
            claim_positions=members,
            closest_text=first.closest.text if first.closest else None,
            closest_similarity=round(first.similarity, 3),
            closest_claim_id=first.closest.id if first.closest else None,
        )
        diff.findings.append(finding)
        for m in members:
            diff.matches[m].finding = len(diff.findings) - 1
