"""cluster: which story does an article report on? Pure decisions over term vectors.

1. `read(title, claims)` — what the article is about, before any statistics: weighted term
   counts (names weigh more than other words; the headline and the lead — the first body
   sentence that says something — more than the rest; figures and years in the text are
   terms of their own) and its *actors*: the names its headline or lead gives and the
   article keeps using.
2. `profile(reading, dfs, documents)` — a TF-IDF vector (IDF from the articles seen so far)
   cut to its MAX_TERMS strongest terms: what identifies the event, not every detail.
3. The inverted index (storage/story_index.py) finds the stories that share those terms;
   a story is the sum of its articles' vectors and knows which actors its headlines name.
4. `choose_story(profile, candidates)` — the most similar candidate (cosine to the story's
   summed vector) if it is similar enough and does not conflict; else a new story.

"The same kind of event with other people is another story": a candidate is refused when
none of the names among the article's vector terms (people, places, organisations) is in the
story's vector — reports of one event name at least one of its people or places, and in ECB+
(six arrival orders) 4 of ~2 700 joins shared none; without this, short items that name
nobody often enough to have actors were joined on shared vocabulary alone ("climber",
"ridge", "brother"): in bench/throughput.py's renamed copies, one climbing accident's story
took the reports of 25 others. It is also refused when the article's actors are unknown to
the story *and* the story's core actors (named in the headlines of at least half its
articles) never appear in the article. Shared vocabulary
("arrested on suspicion of DUI", "checks into rehab") cannot outweigh that. Nor "another
year": an article dated (in its first sentences) LATER_EVENT_YEARS or more after the newest
year the story ever wrote, and leading with a name the story never used, is refused too.

Every constant here was measured with bench/story_grouping.py; see docs/quality.md for what
was tuned and on which file.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from monitor.claims import analyse, opener_case_is_moot, stem
from monitor.model import Claim

# Cosine between an article and a story's summed vector at which the article joins it.
SAME_STORY = 0.2
# A story nobody joined for the quiet period (setting `quiet_period`, 7 days by default) is
# dormant; an article revives it only with a match this strong. At first 0.45, the median
# cosine of articles joining stories of their own event: on real news interrupted for two
# weeks that revived 29 of 42 stories; 0.35 revives 35, with one more of 261 look-alike
# reports (the same kind of event, other people) joined to its original, and costs 0.006
# B-cubed F1 in bench/throughput.py's stream of near-identical look-alikes (docs/quality.md,
# REVIVE; chosen on the ECB+ dev file, as ACTOR_MENTIONS was). 0.30 revives 38 but costs more
# there.
REVIVE = 0.35
# Terms kept per article vector: its strongest, by TF-IDF. Enough to name the event (who,
# where, what), not so many that shared background paragraphs decide; also bounds the index.
MAX_TERMS = 20
# Of those, the terms candidate stories are looked up by (see query_terms).
LOOKUP_TERMS = 10
ENTITY_WEIGHT = 3.0  # a name counts three times a plain word
TITLE_WEIGHT = 2.0
LEAD_WEIGHT = 2.0
YEAR_WEIGHT = 2.0
# A figure of two or more digits ("20-13", "$334 million", "magnitude 6.1"): reports of one
# event repeat its figures, reports of another event of the same kind have other ones.
# (Figures that change as a story develops, like a death toll, cost one shared term.)
NUMBER_WEIGHT = 2.0
# An actor: a name of the headline or lead that the article uses in at least this many
# sentences — whom or where the article is about. A short item has none and is grouped by
# similarity alone; with 3 or 4, names in passing count too (docs/quality.md).
ACTOR_MENTIONS = 5
# Similarity that rests on one shared term is no story: an article joins only if the cosine
# without its largest shared term is at least this. Otherwise a story whose vector one name
# dominates (a town, in a stream of short local items) takes every report naming it and grows
# without end. On ECB+ (six orders) it refused 13 of ~2 260 right joins, F1 0.887 mean before
# and after; on bench/polling.py's synthetic local news (100 feeds, gold = the event) B-cubed
# precision went from 0.48 to 0.85, the largest story from 46 reports to 9 (docs/quality.md).
ONE_TERM = 0.05
# A story's core actors are named in the headlines of at least this share of its articles.
CORE_SHARE = 0.5

# "Another year is another story": an article dated (a year in its headline or first
# sentences, where reports say when) at least this many years after the newest year its
# candidate story ever wrote, and led by a name the story never used, reports a later event
# of the same kind (the 2013 recasting of a TV role is not the 2009 recasting's story, though
# its reports recall the 2009 actor). One year apart is not enough: stories cross New Year.
LATER_EVENT_YEARS = 2
HEAD_SENTENCES = 3  # the headline, a date line and the lead

YEAR = "y:"  # "y:2013": a year written in the text
ACTOR = "h:"  # index rows "h:<name>": how many of a story's articles have <name> as an actor

# Capitalised, but naming a time rather than an actor: "on Sunday", "Dec. 14", "11:06 PM CEST".
# Reports of one event name different days; reports of two events share weekdays.
_TIME_WORDS = frozenset(stem(w) for w in [
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "today", "yesterday", "tonight",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "gmt", "utc", "est", "edt", "cst", "cdt", "mst", "mdt", "pst", "pdt", "bst", "cet", "cest",
    "ist", "et", "pt", "am", "pm",
])
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’-]*")
# A year standing alone: "in 2013", "Sep 27, 2013", "27 / 09 / 2013"; not "$2013", "2013th".
_YEAR = re.compile(r"(?<![\w$€£.,])((?:19|20)\d\d)(?![\w%]|\.\d|,\d)")
_YEAR_VALUE = re.compile(r"(?:19|20)\d\d")  # counted once, as y:…
_MIN_LEAD_TERMS = 4  # a lead says something; "Posted: Apr 02, 2009 11:06 PM" does not


@dataclass(frozen=True)
class Reading:
    """What an article is about, before statistics of other articles come in."""

    counts: Counter[str]  # term → weighted count
    actors: frozenset[str]
    names: frozenset[str] = frozenset()  # every name it uses
    dated: int | None = None  # the latest year written in its headline or first sentences
    latest: int | None = None  # the latest year written anywhere in it


@dataclass(frozen=True)
class Profile:
    """An article as the grouping sees it."""

    vector: dict[str, float]  # its MAX_TERMS strongest terms, TF-IDF, unit length
    terms: frozenset[str]  # every term it uses, to tell what it never mentions
    actors: frozenset[str]
    lead: str | None = None  # its strongest name: whom or what the report leads with
    dated: int | None = None
    latest: int | None = None
    rarest: tuple[str, ...] = ()  # its vector's terms, fewest articles using them first
    names: frozenset[str] = frozenset()  # the names among its vector's terms


@dataclass(frozen=True)
class Candidate:
    """A story the index found, with what the decision needs to know about it."""

    story_id: int
    dot: float  # Σ article weight × story weight over shared terms
    mass: float  # Σ story weight², the story vector's squared norm
    articles: int = 1
    dormant: bool = False  # nobody joined it for the quiet period
    known: frozenset[str] = frozenset()  # which of the article's actors the story already names
    actors: Mapping[str, float] = field(default_factory=dict)  # its actors → articles naming them
    lead_known: bool = True  # the story's vector has the article's lead name
    latest: int | None = None  # the latest year any of its articles wrote
    shared_names: frozenset[str] = frozenset()  # which of the article's names its vector has
    top: tuple[float, str | None] = (0.0, None)  # the shared term adding most to dot, and how much

    @property
    def cosine(self) -> float:
        return self.dot / math.sqrt(self.mass) if self.mass > 0 else 0.0

    @property
    def cosine_beyond_top(self) -> float:
        """The cosine without the one shared term that adds most to it."""
        return (self.dot - self.top[0]) / math.sqrt(self.mass) if self.mass > 0 else 0.0

    def core_actors(self) -> set[str]:
        floor = max(1.0, CORE_SHARE * self.articles)
        return {name for name, count in self.actors.items() if count >= floor}


class Choice(NamedTuple):
    """A decision; unpacks as (story_id, similarity, reason)."""

    story_id: int | None  # None: open a new story
    similarity: float  # cosine to the chosen story, or to the best one refused
    reason: str


# --- reading an article ----------------------------------------------------------------------
def _is_headline(text: str) -> bool:
    """Headline case ("Saints Place Bush On IR", "CHARGERS' WILLIAMS ARRESTED"): capitals
    there say nothing about names."""
    return _headline_words(_WORD.findall(text))


def _headline_words(words: list[str]) -> bool:
    """_is_headline, given the text's words."""
    words = [w for w in words if len(w) > 3]
    if len(words) < 3:
        return False
    shouting = sum(map(str.isupper, words))
    titled = sum([w[0].isupper() for w in words[1:]])
    return shouting >= 0.7 * len(words) or titled >= 0.6 * (len(words) - 1)


def _key(word: str) -> str:
    return word.lower().replace("’", "'").removesuffix("'s").rstrip("'")


def _case_evidence(texts: list[str], headlines: dict[str, bool] | None = None) -> tuple[Counter[str], Counter[str]]:
    """How often each word is written lower-case, and capitalised, inside running sentences.
    `headlines`, if given, gets each text's _is_headline (for _recased)."""
    lower: list[str] = []
    upper: list[str] = []
    for text in texts:
        words = _WORD.findall(text)
        headline = _headline_words(words)
        if headlines is not None:
            headlines[text] = headline
        if headline:
            continue
        # _key of a word without an apostrophe is the word in lower case; most words have none.
        # (Comprehensions: this runs for every word of every article.)
        rest = words[1:]
        if "'" in text or "’" in text:
            lower += [_key(w) if "'" in w or "’" in w else w.lower() for w in rest if w[0].islower()]
            upper += [_key(w) if "'" in w or "’" in w else w.lower() for w in rest
                      if not w[0].islower() and not w.isupper()]
        else:
            lower += [w.lower() for w in rest if w[0].islower()]
            upper += [w.lower() for w in rest if not w[0].islower() and not w.isupper()]
    return Counter(lower), Counter(upper)


def _recased(text: str, lower: Counter[str], upper: Counter[str], headline: bool | None = None) -> str | None:
    """The sentence in the case the article's running text gives its words, or None if
    nothing changes. In a headline a word is a name only if the article writes it
    capitalised; a sentence's first word is lower-cased when the article writes it so.
    (`headline`: _is_headline(text), if known.)"""
    if headline is None:
        headline = _is_headline(text)
    if not headline:  # only the first word can change
        first = _WORD.search(text)
        if first is None:
            return None
        word = first.group(0)
        key = _key(word)
        if lower[key] > upper[key] and word.lower() != word:
            return text[:first.start()] + word.lower() + text[first.end():]
        return None
    changed = False

    def fix(match: re.Match) -> str:
        nonlocal changed
        word = match.group(0)
        key = _key(word)
        if upper[key] > lower[key]:
            new = word.capitalize() if word.isupper() and len(word) > 3 else word
        elif word.isupper() and len(word) <= 3 and not lower[key]:
            new = word  # an acronym: "DUI", "IBF"
        else:
            new = word.lower()
        changed = changed or new != word
        return new

    recased = _WORD.sub(fix, text)
    return recased if changed else None


def _weighted_terms(claim: Claim, years: list[str]) -> dict[str, float]:
    """A sentence's terms and their weights. A name and the same word in lower case are one
    term ("Bush" / "bush"): what differs is how much it counts. (`years`: the years its text
    writes, as _YEAR finds them.)"""
    out: dict[str, float] = {}
    for term in claim.terms:
        # Tokens are "n:", "d:" or "e:" and a value; plain terms are words, with no colon.
        prefix = term[:2]
        if prefix == "n:":
            value = term.rsplit(":", 1)[1]
            if len(value) > 1 and not _YEAR_VALUE.fullmatch(value):
                out[term] = NUMBER_WEIGHT  # "20-13", "$334 million", "6.1": this event's figures
        elif prefix == "d:":
            continue  # a day without its year: reports of one event name different days
        elif prefix == "e:":
            word = term[2:]
            out[word] = 1.0 if word in _TIME_WORDS else ENTITY_WEIGHT
        else:
            out.setdefault(term, 1.0)
    for year in years:
        out[YEAR + year] = YEAR_WEIGHT
    return out


def _names(claim: Claim) -> set[str]:
    return {e[2:] for e in claim.entities if e[2:] not in _TIME_WORDS}


def _says_something(claim: Claim) -> bool:
    return sum(1 for t in claim.terms if not t.startswith(("n:", "d:"))) >= _MIN_LEAD_TERMS


def read(title: str, claims: list[Claim], until_year: int | None = None) -> Reading:
    """Weighted term counts and actors of an article (headline `title`, sentences `claims`).

    `until_year`, the year it was published: a later year it writes ("a plant to open by
    2030") is a plan, not the date of what it reports, so it dates neither the article nor
    its story."""
    title = title.strip()
    headlines: dict[str, bool] = {}
    lower, upper = _case_evidence([c.text for c in claims] + ([title] if title else []), headlines)

    def reread(claim: Claim) -> Claim:
        recased = _recased(claim.text, lower, upper, headlines[claim.text])
        if recased is None:
            return claim
        if opener_case_is_moot(claim.text, recased):
            # Only "The" became "the": what would be read is analyse(claim.text) but for its
            # text, which is only searched for years here (the same in either case).
            return analyse(claim.text)
        return analyse(recased)

    # The years each text writes, found once (recasing a sentence changes none of them).
    texts = [title] + [c.text for c in claims]
    years = {text: _YEAR.findall(text) for text in texts}
    body = [c for c in claims if c.text != title] if title else claims
    parts: list[tuple[Claim, float, list[str]]] = [(reread(analyse(title)), TITLE_WEIGHT, years[title])] \
        if title else []
    head = [parts[0][0]] if parts else []
    lead_found = False
    for original in body:
        claim = reread(original)
        boost = 1.0
        if not lead_found and _says_something(claim):
            boost, lead_found = LEAD_WEIGHT, True
            head.append(claim)
        parts.append((claim, boost, years[original.text]))

    counts: Counter[str] = Counter()
    mentions: Counter[str] = Counter()
    for claim, boost, written in parts:
        for term, weight in _weighted_terms(claim, written).items():
            counts[term] += boost * weight
        mentions.update(_names(claim))
    named_in_head = set().union(*(_names(c) for c in head)) if head else set()
    actors = frozenset(n for n in named_in_head if mentions[n] >= ACTOR_MENTIONS)
    return Reading(counts=counts, actors=actors, names=frozenset(mentions),
                   dated=_latest_year([years[t] for t in texts[:HEAD_SENTENCES + 1]], until_year),
                   latest=_latest_year(years.values(), until_year))


def _latest_year(written: Iterable[list[str]], until: int | None = None) -> int | None:
    """The latest of the years written (each text's, as _YEAR finds them) up to `until`."""
    return max((y for found in written for y in map(int, found) if until is None or y <= until), default=None)


def term_counts(title: str, claims: list[Claim]) -> Counter[str]:
    return read(title, claims).counts


# --- statistics and decisions ----------------------------------------------------------------
def idf(df: int, documents: int) -> float:
    return math.log((documents + 1) / (df + 1)) + 1.0


def vector(counts: Mapping[str, float], dfs: Mapping[str, int], documents: int,
           limit: int | None = None) -> dict[str, float]:
    """Sub-linear TF × IDF of the `limit` strongest terms (all if None), unit length."""
    weights = {t: (1.0 + math.log(c)) * idf(dfs.get(t, 0), documents) for t, c in counts.items() if c >= 1}
    if limit is not None and len(weights) > limit:
        weights = dict(sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:limit])
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {t: w / norm for t, w in weights.items()}


def profile(reading: Reading, dfs: Mapping[str, int], documents: int) -> Profile:
    weights = vector(reading.counts, dfs, documents, MAX_TERMS)
    lead = max((t for t in weights if t in reading.names), key=lambda t: (weights[t], t), default=None)
    # Terms no other article used yet (a typo, a word of its own) find no story: last.
    rarest = tuple(sorted(weights, key=lambda t: (dfs.get(t, 0) == 0, dfs.get(t, 0), -weights[t], t)))
    return Profile(vector=weights, terms=frozenset(reading.counts), actors=reading.actors, lead=lead,
                   dated=reading.dated, latest=reading.latest, rarest=rarest,
                   names=frozenset(t for t in weights if t in reading.names))


def as_candidate(story_id: int, members: list[Profile], article: Profile, dormant: bool = False) -> Candidate:
    """What the index returns for a story made of `members`, looked up by `article`
    (storage/story_index.py computes the same from its rows)."""
    summed: Counter[str] = Counter()
    actors: Counter[str] = Counter()
    for member in members:
        summed.update(member.vector)
        actors.update(member.actors)
    named = set(summed) | set(actors)
    parts = {t: w * summed[t] for t, w in article.vector.items() if t in summed}
    return Candidate(
        story_id=story_id,
        dot=sum(parts.values()),
        mass=sum(w * w for w in summed.values()),
        articles=len(members),
        dormant=dormant,
        known=frozenset(article.actors & named),
        actors={name: count for name, count in actors.items() if count >= max(1.0, CORE_SHARE * len(members))},
        lead_known=article.lead is None or article.lead in summed,
        latest=max((m.latest for m in members if m.latest is not None), default=None),
        shared_names=frozenset(article.names & set(summed)),
        top=max(((w, t) for t, w in parts.items()), default=(0.0, None)),
    )


def query_terms(profile: Profile) -> list[str]:
    """The terms to look candidates up by: the LOOKUP_TERMS of its vector that the fewest
    articles use (strongest first when that is unknown). A story an article belongs to shares
    its distinctive terms; a common one ("police", a capital) has postings in thousands of
    active stories when tens of thousands of articles a week are stored, and reading them all
    was most of an article's cost there (44 of ~50 ms at 37 000 stored in bench/polling.py's
    data) while it found no story the rarest terms missed. The similarity itself is still
    computed over the whole vector (storage/story_index.py)."""
    if profile.rarest:
        return list(profile.rarest[:LOOKUP_TERMS])
    return [t for t, _ in sorted(profile.vector.items(), key=lambda item: (-item[1], item[0]))][:LOOKUP_TERMS]


def conflict(profile: Profile, candidate: Candidate) -> str | None:
    """Why the article reports another event than the candidate story, or None.

    No name in common: the article names people, places or organisations among its strongest
    terms, and the story has none of them. One term in common: without the shared term that
    adds most to it, the similarity is below ONE_TERM.
    Other people: the article's actors are unknown to the story and one of the story's core
    actors never appears in the article. A later event: the article is dated years after the
    newest year the story wrote, and leads with a name the story never used."""
    if profile.names and not candidate.shared_names:
        return f"no name in common ({', '.join(sorted(profile.names))} are new to the story)"
    unknown = set(profile.actors) - set(candidate.known)
    absent = {name for name in candidate.core_actors() if name not in profile.terms}
    if unknown and absent:
        return f"other actors ({', '.join(sorted(unknown))} vs {', '.join(sorted(absent))})"
    if (profile.dated is not None and candidate.latest is not None and not candidate.lead_known
            and profile.dated - candidate.latest >= LATER_EVENT_YEARS):
        return f"a later event ({profile.lead}, {profile.dated}; the story's newest year is {candidate.latest})"
    if candidate.cosine_beyond_top < ONE_TERM:
        return f"only {candidate.top[1]} in common (similarity {candidate.cosine_beyond_top:.2f} without it)"
    return None


def choose_story(profile: Profile, candidates: list[Candidate]) -> Choice:
    """The most similar acceptable candidate, or a new story (story_id None) and why."""
    best: Candidate | None = None
    refused: tuple[float, str] = (0.0, "no candidate story")
    for candidate in candidates:
        cosine = candidate.cosine
        bar = REVIVE if candidate.dormant else SAME_STORY
        if cosine < bar:
            if cosine > refused[0]:
                refused = (cosine, f"story {candidate.story_id}: similarity {cosine:.2f} < {bar}")
            continue
        why = conflict(profile, candidate)
        if why is not None:
            if cosine > refused[0]:
                refused = (cosine, f"story {candidate.story_id}: {why}")
            continue
        if best is None or cosine > best.cosine:
            best = candidate
    if best is None:
        return Choice(None, refused[0], f"new story: {refused[1]}")
    verb = "revives" if best.dormant else "joins"
    return Choice(best.story_id, best.cosine, f"{verb} story {best.story_id}")
