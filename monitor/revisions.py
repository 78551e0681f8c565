"""Revisions: what changed between two versions of one article, and what kind of edit it was.

Pure. Sentences are aligned with rapidfuzz: identical ones are unchanged, close ones
(CHANGED_SIMILARITY) are changed, the rest are added or removed. An edit that changes only
capitals, punctuation, spacing, numbers spelt out or not, or timestamps is *cosmetic*: it is
recorded on the article version but is not a development and never alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from monitor.claims import analyse

# Two sentences at least this similar (rapidfuzz ratio, 0–100) are one sentence edited.
CHANGED_SIMILARITY = 60
_TIMESTAMP = re.compile(
    r"\b(updated|published|posted|last modified)?:?\s*\d{1,2}[:.]\d{2}\s*(am|pm|a\.m\.|p\.m\.)?\s*"
    r"(GMT|UTC|BST|CET|EST|EDT|PST|PDT|ET)?\b|\b(updated|published|posted)\b", re.IGNORECASE)
_CORRECTION = re.compile(
    r"\b(correction|corrected|an earlier version of this|misstated|misidentified|clarification|"
    r"clarified|this article has been amended)\b", re.IGNORECASE)


class Edit:
    COSMETIC = "cosmetic"
    HEADLINE = "headline rewrite"
    APPENDED = "appended update"
    CORRECTION = "correction"
    FIGURES = "changed figures"
    FACTS = "new facts"


@dataclass
class Revision:
    edit: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)  # (old, new), substantive only
    cosmetic: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    title: tuple[str, str] | None = None  # (old, new) when the headline changed in substance

    @property
    def substantive(self) -> bool:
        return self.edit != Edit.COSMETIC

    def new_sentences(self) -> list[str]:
        """What a reader of the new version has not read before: added and rewritten sentences."""
        return self.added + [new for _, new in self.changed]

    def to_json(self) -> dict:
        return {"edit": self.edit, "added": self.added, "removed": self.removed,
                "changed": [{"old": o, "new": n} for o, n in self.changed],
                "cosmetic": [{"old": o, "new": n} for o, n in self.cosmetic],
                "title": None if self.title is None else {"old": self.title[0], "new": self.title[1]}}


def _same_in_substance(old: str, new: str) -> bool:
    """Equal once case, punctuation, number spelling and timestamps are set aside."""
    def units(text: str) -> list[str]:
        # Lower-cased so that "Toll Rises" is not taken for a name where "toll rises" was not.
        return sorted(analyse(_TIMESTAMP.sub(" ", text).lower()).norm.split())

    return units(old) == units(new)


def compare(old_title: str, old_sentences: list[str], new_title: str, new_sentences: list[str]) -> Revision:
    revision = Revision(edit=Edit.COSMETIC)
    remaining = list(old_sentences)
    unmatched_new: list[tuple[int, str]] = []
    matched_positions: list[int] = []
    for position, sentence in enumerate(new_sentences):
        if sentence in remaining:
            remaining.remove(sentence)
            matched_positions.append(position)
        else:
            unmatched_new.append((position, sentence))
    for position, sentence in unmatched_new:
        best = process.extractOne(sentence, remaining, scorer=fuzz.ratio, score_cutoff=CHANGED_SIMILARITY)
        if best is None:
            revision.added.append(sentence)
            continue
        old = best[0]
        remaining.remove(old)
        matched_positions.append(position)
        (revision.cosmetic if _same_in_substance(old, sentence) else revision.changed).append((old, sentence))
    revision.removed = [s for s in remaining if not _TIMESTAMP.fullmatch(s.strip())]
    revision.added = [s for s in revision.added if not _TIMESTAMP.fullmatch(s.strip())]
    if old_title != new_title:
        if _same_in_substance(old_title, new_title):
            revision.cosmetic.append((old_title, new_title))
        else:
            revision.title = (old_title, new_title)
    revision.edit = _classify(revision, matched_positions, len(new_sentences))
    return revision


def _classify(revision: Revision, matched_positions: list[int], new_length: int) -> str:
    body_changed = revision.added or revision.removed or revision.changed
    if not body_changed and revision.title is None:
        return Edit.COSMETIC
    if any(_CORRECTION.search(s) for s in revision.new_sentences()):
        return Edit.CORRECTION
    if any(analyse(o).numbers != analyse(n).numbers for o, n in revision.changed):
        return Edit.FIGURES
    if not body_changed:
        return Edit.HEADLINE
    last_kept = max(matched_positions, default=-1)
    if revision.added and not revision.changed and not revision.removed and last_kept < new_length - len(revision.added):
        return Edit.APPENDED
    return Edit.FACTS
