"""What a sentence says, in a form that can be matched: entities, numbers, dates and terms.

`analyse(sentence)` is pure. Entity spellings (U.S. / US / United States, Zelensky /
Zelenskyy), number formats ($500 billion / $500bn / 500 billion dollars) and date formats
(February 21 / 21 Feb / 2025-02-21) all become one canonical token each, so matching compares
meaning-bearing units instead of characters.

Token shapes in `Claim.norm` and `Claim.terms`:
  e:zelensky      an entity (person surname, place, organisation word, alias target)
  d:02-21         a day of a month (year dropped: within one story it rarely disambiguates)
  d:2024-09       a month of a year;  d:2024  a year
  n:usd:5e+11     an amount, n:pct:5 a percentage, n:24 a plain number
  negoti          any other content word, Snowball-stemmed
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

from monitor import lexicon
from monitor.model import Claim

_stemmer = snowballstemmer.stemmer("english")
MAX_TERM = 100  # longer "names" are run-on capitals (headlines in caps); the index column holds 128


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    word = lexicon.SYNONYMS.get(word, word)
    return _stemmer.stemWord(word)


# --- dates -------------------------------------------------------------------------------
_MONTH = r"(January|February|March|April|May|June|July|August|September|October|November|December|" \
         r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"
_YEAR_PREPOSITIONS = ("in", "since", "by", "until", "of", "from", "during")
_ISO_DATE = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")
_DATE_PATTERNS = [
    (re.compile(rf"\b{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b"), ("month", "day", "year")),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b"), ("day", "month", "year")),
    (re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b"), ("month", "year")),
    (_ISO_DATE, ("year", "month", "day")),
    (re.compile(rf"\b(?:{'|'.join(_YEAR_PREPOSITIONS)})\s+{_YEAR}\b"), ("year",)),
]
_NAMED_MONTH = frozenset(pattern for pattern, _ in _DATE_PATTERNS[:3])
# Every spelling in _MONTH starts with one of these (case matters there too): a text without
# any cannot hold a named month, and most sentences have none.
_MONTH_HINT = re.compile("Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


def _date_token(parts: dict[str, str | None]) -> str | None:
    month = parts.get("month")
    m = int(month) if month and month.isdigit() else lexicon.MONTHS.get((month or "").lower().rstrip("."))
    day = int(parts["day"]) if parts.get("day") else None
    year = parts.get("year")
    if m is None and year:
        return f"d:{year}"
    if m is None or not 1 <= m <= 12:
        return None
    if day is not None:
        return f"d:{m:02d}-{day:02d}" if 1 <= day <= 31 else None
    return f"d:{year}-{m:02d}" if year else None


def _replace_dates(text: str, found: list[str]) -> str:
    """Every pattern needs a digit: the caller skips texts without one. (The tokens put in
    have no capitals, so they cannot make a month name appear.)"""
    named_month = _MONTH_HINT.search(text) is not None
    for pattern, names in _DATE_PATTERNS:
        if (pattern in _NAMED_MONTH and not named_month) or (pattern is _ISO_DATE and "-" not in text):
            continue

        def sub(match: re.Match, names=names) -> str:
            token = _date_token(dict(zip(names, match.groups(), strict=False)))
            if token is None:
                return match.group(0)
            found.append(token)
            return f" {token} "
        text = pattern.sub(sub, text)
    return text


# --- numbers -----------------------------------------------------------------------------
_NUM = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
_SCALE = r"(thousand|million|billion|trillion|bn|mn|mln|tn|trn|k|m|b)\b"
_CUR_SYM = r"(US\$|\$|€|£|¥|₴)"
_CUR_WORD = r"(dollars?|euros?|pounds?|USD|EUR|GBP|yen|hryvnias?)\b"
_MONEY_PATTERNS = [
    re.compile(rf"{_CUR_SYM}\s?{_NUM}(?:\s?{_SCALE})?", re.IGNORECASE),
    re.compile(rf"\b{_NUM}\s?(?:{_SCALE}\s?)?{_CUR_WORD}", re.IGNORECASE),
]
_PERCENT = re.compile(rf"\b{_NUM}\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)
_PLAIN = re.compile(rf"(?<![\w:.-]){_NUM}(?:\s?(thousand|million|billion|trillion)\b)?", re.IGNORECASE)
_WORD_NUMBER_SOURCE = (
    r"\b(" + "|".join(sorted(lexicon.NUMBER_WORDS, key=len, reverse=True)) + r")(?:[- ](one|two|three|four|"
    r"five|six|seven|eight|nine))?\b(?:\s+(thousand|million|billion))?"
)
_WORD_NUMBER = re.compile(_WORD_NUMBER_SOURCE, re.IGNORECASE)
# Guards for the case-blind patterns, which are slow and usually find nothing. Each is a
# condition every match needs. Those reading `text.lower()` hold for ASCII text only: there
# IGNORECASE is exactly "equal after lower()" (elsewhere "ſ" matches "s", "ı" "i", ...).
_WORD_NUMBER_LOWER = re.compile(_WORD_NUMBER_SOURCE)  # a match in text.lower() of ASCII text
_CURRENCY_SIGN = re.compile(r"[$€£¥₴]")
_CURRENCY_WORDS = ("dollar", "eur", "pound", "usd", "gbp", "yen", "hryvnia")  # in lower case
_DIGIT = re.compile(r"\d")  # what \d matches in the patterns (any Unicode decimal digit)


def _value(number: str, scale: str | None) -> str:
    value = float(number.replace(",", "")) * lexicon.SCALES.get((scale or "").lower(), 1.0)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    # "6.84e15", not "6.84e+15": the plain-number pattern would take the "15" after the "+"
    # for a figure of its own and cut the token in two (found by bench/throughput.py).
    return f"{value:g}".replace("e+", "e")


def _replace_numbers(text: str, found: list[str], digits: bool) -> str:
    """`digits`: the text has a digit; every pattern but the number words needs one."""
    def money(match: re.Match) -> str:
        groups = [g for g in match.groups()]
        if match.re is _MONEY_PATTERNS[0]:
            currency, number, scale = groups
        else:
            number, scale, currency = groups
        code = lexicon.CURRENCIES.get(currency.lower().rstrip("s") if currency.lower() not in
                                      lexicon.CURRENCIES else currency.lower(), "usd")
        token = f"n:{code}:{_value(number, scale)}"
        found.append(token)
        return f" {token} "

    # Tokens put in are lower-case ASCII: an ASCII text stays ASCII.
    ascii_text = text.isascii()
    if digits and _CURRENCY_SIGN.search(text):
        text = _MONEY_PATTERNS[0].sub(money, text)
    if digits and (not ascii_text or any(w in text.lower() for w in _CURRENCY_WORDS)):
        text = _MONEY_PATTERNS[1].sub(money, text)

    def percent(match: re.Match) -> str:
        token = f"n:pct:{_value(match.group(1), None)}"
        found.append(token)
        return f" {token} "

    if digits and ("%" in text or not ascii_text or "per" in text.lower()):
        text = _PERCENT.sub(percent, text)

    def words(match: re.Match) -> str:
        # The pattern ignores case the Unicode way, so "sıx" (a dotless ı, whose capital is I)
        # matches "six" but is not a key: such a spelling is left as it is written.
        value = lexicon.NUMBER_WORDS.get(match.group(1).lower())
        unit = lexicon.NUMBER_WORDS.get(match.group(2).lower()) if match.group(2) else 0
        if value is None or unit is None:
            return match.group(0)
        value += unit
        if value in (0, 1) and not match.group(3):
            return match.group(0)  # "one" and "zero" are mostly pronoun-like, not figures
        token = f"n:{_value(str(value), match.group(3))}"
        found.append(token)
        return f" {token} "

    if not ascii_text or _WORD_NUMBER_LOWER.search(text.lower()):
        before = len(found)
        text = _WORD_NUMBER.sub(words, text)
        digits = digits or len(found) > before  # its tokens have digits
    if not digits:
        return text

    def plain(match: re.Match) -> str:
        token = f"n:{_value(match.group(1), match.group(2))}"
        found.append(token)
        return f" {token} "

    return _PLAIN.sub(plain, text)


# --- entities ----------------------------------------------------------------------------
_ALIASES = "|".join(re.escape(a) for a in sorted(lexicon.ALIASES, key=len, reverse=True))
_ALIAS_RE = re.compile(r"(?<![\w.])(" + _ALIASES + r")(?![\w])")
# An alias anywhere: the lookbehind above keeps re from scanning fast, this finds none in most
# sentences at a fifth of the cost.
_ALIAS_HINT = re.compile(_ALIASES)
_TOKEN = r"[ed]:[\w:+.-]+|n:[\w:+.-]+|[A-Za-zÀ-ÖØ-öø-ÿ][\w'’-]*"
_TOKEN_SPLIT = re.compile(f"({_TOKEN})")  # split() keeps the tokens and what lies between
_NOT_TERMS = lexicon.STOPWORDS | lexicon.FRAMING
_QUOTE = re.compile(r"[“\"«].{3,}?[”\"»]")


def _entity_runs(tokens: list[str], lowered: list[str], joined: list[bool]) -> list[list[int]]:
    """Runs of capitalised tokens (indexes); punctuation between two tokens ends a run.
    A capitalised everyday word that opens the sentence or a run is not a name.
    (`lowered`: the tokens in lower case. The "e:", "d:", "n:" tokens are lower-case.)"""
    runs: list[list[int]] = []
    current: list[int] = []
    for i, token in enumerate(tokens):
        if current and not joined[i]:
            runs.append(current)
            current = []
        if token[:1].isupper() and (current or not (
            lowered[i] in _NOT_TERMS
            or (i == 0 and (lowered[i] in lexicon.SENTENCE_STARTERS or lowered[i].endswith(("ly", "ing", "ed"))))
        )):
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    # A run of titles alone ("President" before an alias) names nobody new.
    return [run for run in runs if any(lowered[i] not in lexicon.TITLES for i in run)]


# Computed once: `analyse` takes them out of a sentence's terms to count the concrete ones.
_COMMENTARY_STEMS = frozenset(stem(w) for w in lexicon.COMMENTARY)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.replace("’", "'").replace("‘", "'")


@lru_cache(maxsize=50_000)
def analyse(sentence: str) -> Claim:
    """Turn one sentence into a Claim. Pure, so cached: a story's sentences are analysed again
    when a later report is compared with them."""
    text = _clean(sentence)
    dates: list[str] = []
    numbers: list[str] = []
    entities: list[str] = []
    if "," in text and any(w in text for w in _ATTRIBUTION_WORDS):
        text = _ATTRIBUTION_TAIL.sub(".", text)
    # Ordinals, times, dates, amounts and percentages all need a digit; most sentences have none.
    digits = _DIGIT.search(text) is not None
    if digits:
        text = _ORDINAL.sub(lambda m: " " + lexicon.ORDINALS.get(m.group(1), m.group(0)) + " ", text)
        text = _TIME_OF_DAY.sub(" ", text)  # "7:48 am", "10.32 GMT": when, not how many
        text = _replace_dates(text, dates)
    text = _replace_numbers(text, numbers, digits)

    def alias(match: re.Match) -> str:
        token = f"e:{lexicon.ALIASES[match.group(1)]}"
        entities.append(token)
        return f" {token} "

    if _ALIAS_HINT.search(text):
        text = _ALIAS_RE.sub(alias, text)
    # [before the first token, token, between it and the next, token, ..., after the last]
    parts = _TOKEN_SPLIT.split(text)
    raw_tokens = parts[1::2]
    if "'" in text or "’" in text:
        tokens = [t.rstrip("'’").removesuffix("'s") for t in raw_tokens]
    else:
        tokens = raw_tokens
    lowered_tokens = [t.lower() for t in tokens]
    # joined[i]: only spaces separate token i from the one before (no comma, bracket, dash).
    joined = [False] + [not between.strip() for between in parts[2:-1:2]]
    terms: list[str] = []
    entity_positions: set[int] = set()
    for run in _entity_runs(tokens, lowered_tokens, joined):
        words = [tokens[i] for i in run]
        lowered = [w.lower() for w in words]
        entity_positions.update(run)
        if lowered[-1] in lexicon.ORG_WORDS and len(words) > 1:
            # An organisation, place or event: one unit, however many words name it.
            entities.append("e:" + "_".join(stem(w) for w in lowered)[:MAX_TERM])
        elif len(words) == 1:
            entities.append(f"e:{stem(lowered[0])}")
        else:
            # A person ("President Donald Trump"): the surname is what reports share.
            entities.append(f"e:{stem(lowered[-1])}")
    for i, token in enumerate(tokens):
        if i in entity_positions or token.startswith(("e:", "d:", "n:")):
            continue
        lowered = lowered_tokens[i]
        if lowered in _NOT_TERMS or len(lowered) < 2:
            continue
        if token[:1].isupper() and lowered in lexicon.TITLES:
            continue  # "President" before an alias: a title, not a fact
        terms.append(stem(lowered)[:MAX_TERM])
    figures = _figures(tokens) if "n:" in text else ()
    lowered_text = sentence.lower()
    words = set(lowered_tokens) if tokens is raw_tokens else {t.lower() for t in raw_tokens}
    commentary = len(words & lexicon.COMMENTARY)
    phrases = sum(1 for p in lexicon.COMMENTARY_PHRASES if p in lowered_text)
    commentary += 2 * phrases
    speculative = bool(words & lexicon.SPECULATIVE)
    has_quote = bool(_QUOTE.search(sentence))
    all_terms = frozenset(terms) | frozenset(entities) | frozenset(dates) | frozenset(numbers)
    concrete = len(set(terms) - _COMMENTARY_STEMS)
    factual = bool(numbers or dates or entities) or concrete >= 5
    if _is_heading(sentence, len(raw_tokens)) and not (entities and concrete >= 2):
        factual = False
    if concrete <= 1 and (numbers or dates) and not entities:
        factual = False  # a dateline or timestamp: "PUBLISHED: THURSDAY, MAY 2, 2013, 1:32 PM"
    if commentary >= 2 and not (numbers or dates) and (speculative or commentary >= 3 or not entities):
        factual = False
    if phrases:
        factual = False
    salience = _salience(entities, numbers, dates, has_quote, concrete, commentary, factual)
    ordered = entities + dates + numbers + terms
    return Claim(
        text=sentence.strip(),
        norm=" ".join(ordered),
        terms=all_terms,
        entities=frozenset(entities),
        numbers=frozenset(numbers),
        dates=frozenset(dates),
        factual=factual,
        salience=salience,
        figures=figures,
    )


def _figures(tokens: list[str]) -> tuple[tuple[str, str], ...]:
    """Each number with the word it counts: "43 people were killed" → ("n:43", "peopl").

    The counted word is the first content word after the number (within three words);
    amounts and percentages count their unit.
    """
    found = []
    for i, token in enumerate(tokens):
        if not token.startswith("n:"):
            continue
        unit = token.split(":")[1] if token.count(":") == 2 else ""
        counted = unit
        for word in tokens[i + 1 : i + 4]:
            lowered = word.lower()
            if word.startswith(("n:", "d:")):
                break
            if word.startswith("e:") or lowered in lexicon.STOPWORDS or lowered in lexicon.FRAMING:
                continue
            counted = counted or stem(lowered)
            break
        found.append((token, counted))
    return tuple(found)


# "…, according to a report from WCCO-TV Channel 4." / "…, the regional government said.":
# who reports a fact is not part of it, and unseen outlet names would weigh as news.
_ATTRIBUTION_TAIL = re.compile(
    r"(?:,\s*according to [^,.;]{1,80}|,\s*(?:the\s+)?[\w .'-]{1,60}?\s+(?:said|says|reported|told [\w .'-]{1,40}))"
    r"(?:\s+on\s+(?:its|his|her|their)\s+[\w ]{1,20})?\s*[.!]?\s*$")
_ATTRIBUTION_WORDS = ("according to ", "said", "says", "reported", "told ")  # one is in every match
_ORDINAL = re.compile(r"\b(\d{1,2}(?:st|nd|rd|th))\b", re.IGNORECASE)
_TIME_OF_DAY = re.compile(
    r"\b\d{1,2}\s?[:.]\s?\d{2}\s*(?:a\.?m\.?|p\.?m\.?)?(?:\s*\(?\s*\d{3,4}\s*GMT[^)]*\)?)?"
    r"(?:\s*(?:GMT|UTC|BST|CET|CEST|EST|EDT|PST|PDT|ET|PT))?|\b\d{1,2}\s?(?:a\.m\.|p\.m\.|am|pm)\b",
    re.IGNORECASE)


# Opening words whose case `analyse` never looks at: a sentence that opens with one ("The",
# "He", "But") gives the same Claim, but for its text, as with it lower-cased. Read (in
# monitor/stories.py) relies on it not to analyse such a sentence twice. Why it holds: the
# word opens the sentence, so no pattern can read it as the end of a match; no case-sensitive
# pattern can start with it (not a month, not a preposition before a year, not an alias);
# no number word; a capitalised opener that is a stopword, framing word or usual sentence
# starter is never a name, and none is a title (those are skipped only when capitalised).
# tests/test_claims.py checks it against every pattern's kind of text.
_CASELESS_OPENERS = frozenset(
    w for w in (_NOT_TERMS | lexicon.SENTENCE_STARTERS) - lexicon.TITLES
    if re.fullmatch("[a-z]+", w)
    and re.fullmatch(_MONTH, w.capitalize()) is None and w not in _YEAR_PREPOSITIONS
    and w not in lexicon.NUMBER_WORDS
    and not any(a in (w, w.capitalize()) or a.startswith((w + " ", w.capitalize() + " ")) for a in lexicon.ALIASES)
)
_OPENER = re.compile(r"([A-Z][a-z]*) ")


def opener_case_is_moot(text: str, recased: str) -> bool:
    """Whether `recased` is `text` with its first word lower-cased, and that word one whose case
    does not matter: analyse(recased) equals analyse(text) in everything but the text."""
    opener = _OPENER.match(text)
    return (opener is not None and opener.group(1).lower() in _CASELESS_OPENERS
            and recased == text[0].lower() + text[1:])


def _is_heading(sentence: str, n_tokens: int) -> bool:
    """"Timeline of negotiations": a short line without closing punctuation labels, it tells nothing."""
    return n_tokens <= 6 and not sentence.rstrip().endswith((".", "!", "?", "”", '"', "'"))


def key(term: str) -> str:
    """The identity of a term for matching: an entity word matches the same plain word."""
    return term[2:] if term.startswith("e:") else term


def _salience(entities, numbers, dates, has_quote, concrete, commentary, factual) -> float:
    """What a sentence carries, in [0, 1], before novelty is taken into account."""
    if not factual:
        return round(max(0.0, 0.1 - 0.03 * commentary), 3)
    score = 0.2
    score += min(0.25, 0.08 * len(set(entities)))
    score += 0.2 if numbers else 0.0
    score += 0.15 if dates else 0.0
    score += 0.1 if has_quote else 0.0
    score += min(0.15, 0.02 * concrete)
    score -= 0.05 * commentary
    return round(max(0.0, min(1.0, score)), 3)


def term_weight(term: str) -> float:
    """How much a unit counts when asking "was this already said?"."""
    if term.startswith(("n:", "d:")):
        return 2.0
    if term.startswith("e:"):
        return 1.5
    return 0.4 if term in lexicon.LIGHT else 1.0
