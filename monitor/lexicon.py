"""Word lists that the matching stages share. Each list says why it exists.

Extending newsmon to a new beat usually means adding aliases here (or in a deployment's
own aliases file, later) — not changing the matching code.
"""

from __future__ import annotations

# Surface forms → one canonical entity. Spelling variants that fuzzy matching alone would
# miss (U.S. vs United States, Kiev vs Kyiv) or that are demonyms of a country.
# Case matters for entries that collide with common words ("US" vs the pronoun "us").
ALIASES: dict[str, str] = {
    "U.S.A.": "united_states", "U.S.": "united_states", "USA": "united_states", "US": "united_states",
    "United States of America": "united_states", "United States": "united_states",
    "America": "united_states", "American": "united_states", "Americans": "united_states",
    "U.K.": "united_kingdom", "UK": "united_kingdom", "United Kingdom": "united_kingdom",
    "Britain": "united_kingdom", "British": "united_kingdom", "Great Britain": "united_kingdom",
    "E.U.": "european_union", "EU": "european_union", "European Union": "european_union",
    "U.N.": "united_nations", "UN": "united_nations", "United Nations": "united_nations",
    "Ukrainian": "ukraine", "Ukrainians": "ukraine", "Ukraine": "ukraine",
    "Russian": "russia", "Russians": "russia", "Russia": "russia",
    "Chinese": "china", "China": "china", "French": "france", "German": "germany",
    "Israeli": "israel", "Palestinian": "palestine", "Iranian": "iran", "Indian": "india",
    "Kiev": "kyiv", "Kyiv": "kyiv",
    "Zelenskyy": "zelensky", "Zelenskiy": "zelensky", "Zelenskyi": "zelensky", "Zelensky": "zelensky",
    "Volodymyr Zelensky": "zelensky", "Volodymyr Zelenskyy": "zelensky",
}

# Words that only frame a claim ("X said that …", "according to reports"): who said it is
# kept as an entity, the framing itself is not a fact, so two reports of the same fact
# with different framing still match.
FRAMING = frozenset(
    ["said", "says", "say", "saying", "told", "tell", "tells", "stated", "states", "stating", "noted", "notes", "mentioned", "mentions", "emphasized", "emphasised", "emphasizes", "stressed", "added", "adds", "according", "reported", "reports", "reportedly", "revealed", "reveals", "indicated", "indicating", "indicates", "claimed", "claims", "suggested", "suggests", "expressed", "expresses", "described", "describes", "announced", "announces", "confirmed", "confirms", "explained", "believes", "belief", "believed", "stated", "statement", "statements", "further", "additionally", "also", "however", "previously", "recently", "currently", "meanwhile", "ultimately", "still", "yet", "already", "publicly", "local", "time", "moreover", "furthermore", "noting", "highlighting", "highlighted", "underlined", "underscored", "insisted", "argued"]
)

# Titles before a name: "President Trump" and "Trump" are the same actor.
TITLES = frozenset(
    ["president", "vice", "prime", "minister", "secretary", "advisor", "adviser", "chancellor", "senator", "governor", "mayor", "general", "director", "chief", "minister", "national", "security", "treasury", "state", "spokesman", "spokeswoman", "spokesperson", "ambassador", "king", "queen", "prince", "judge", "justice", "officer", "dr", "mr", "mrs", "ms", "former", "deputy", "foreign", "defence", "defense", "finance"]
)

# A capitalised sequence ending in one of these names an organisation, place or event,
# not a person: keep all its words.
ORG_WORDS = frozenset(
    ["office", "conference", "council", "ministry", "department", "party", "bank", "agency", "university", "committee", "administration", "commission", "court", "parliament", "congress", "senate", "house", "union", "association", "organization", "organisation", "company", "corporation", "group", "forum", "summit", "institute", "center", "centre", "foundation", "fund", "army", "navy", "force", "forces", "police", "service", "services", "agreement", "treaty", "act"]
)

# Words of near-equal meaning in news reports of deals, conflicts and disasters.
SYNONYMS: dict[str, str] = {
    "deal": "agreement", "accord": "agreement", "pact": "agreement",
    "absence": "lack", "lacking": "lack", "lacked": "lack", "without": "lack",
    "killed": "dead", "died": "dead", "deaths": "dead", "death": "dead", "fatalities": "dead",
    "injured": "wounded", "hurt": "wounded", "injuries": "wounded",
    "talks": "negotiations", "negotiation": "negotiations",
    "refused": "rejected", "rejection": "rejected", "refusal": "rejected", "declined": "rejected",
    "resistance": "rejected", "resisted": "rejected", "opposed": "rejected",
    "updated": "revised", "amended": "revised",
    "minerals": "mineral", "due": "because", "metals": "mineral", "metal": "mineral",
    "capital": "capital",
}

# Language of commentary and evaluation: a sentence that leans on these, with no number or
# date, states an opinion or a mood rather than a fact ("The stakes are high", "Only time
# will tell"). Each hit lowers a sentence's salience.
COMMENTARY = frozenset(
    ["stakes", "hopes", "hope", "implications", "far-reaching", "complexity", "importance", "significant", "significance", "crucial", "evolving", "nature", "balance", "chapter", "watches", "watch", "potential", "rewards", "beneficial", "mutually", "broader", "key", "intensity", "evident", "underscores", "unfold", "unfolding", "remains", "remain", "world", "closely", "undoubtedly", "arguably", "perhaps", "promising", "striking", "interests", "concerns", "future"]
)

COMMENTARY_PHRASES = (
    "only time will tell", "time will tell", "remains to be seen", "remain to be seen",
    "sign up for", "newsletter", "subscribe", "click here", "all rights reserved", "read more",
    "follow us", "advertisement", "cookie", "terms of use", "privacy policy", "share this",
)

# Modal verbs of speculation: "could have far-reaching implications".
SPECULATIVE = frozenset(["could", "might", "may", "would", "should"])

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "aren't", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "cannot", "could", "couldn't", "did", "didn't", "do", "does", "doesn't", "doing", "don't", "down", "during", "each", "few", "for", "from", "had", "hadn't", "has", "hasn't", "have", "haven't", "having", "he", "he'd", "he'll", "he's", "her", "here", "here's", "hers", "herself", "him", "himself", "his", "how", "how's", "i", "i'd", "i'll", "i'm", "i've", "if", "in", "into", "is", "isn't", "it", "it's", "its", "itself", "let's", "me", "more", "most", "mustn't", "my", "myself", "no", "nor", "not", "of", "off", "on", "once", "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over", "own", "same", "shan't", "she", "she'd", "she'll", "she's", "should", "shouldn't", "so", "some", "such", "than", "that", "that's", "the", "their", "theirs", "them", "themselves", "then", "there", "there's", "these", "they", "they'd", "they'll", "they're", "they've", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "wasn't", "we", "we'd", "we'll", "we're", "we've", "were", "weren't", "what", "what's", "when", "when's", "where", "where's", "which", "while", "who", "who's", "whom", "why", "why's", "with", "won't", "would", "wouldn't", "you", "you'd", "you'll", "you're", "you've", "your", "yours", "yourself", "yourselves", "will", "shall", "must", "may", "might", "also", "just", "than", "then", "now", "well", "even", "much", "many", "via", "upon", "onto", "within", "without", "toward", "towards", "amid", "among", "whether", "though", "although", "since", "unless", "whose", "per", "mr", "mrs", "ms", "one", "two", "its", "it's", "s", "t"]
) - {"not", "no", "without"}

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100, "dozen": 12,
}

SCALES = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "mln": 1e6,
    "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12, "tn": 1e12, "trn": 1e12,
}

CURRENCIES = {
    "$": "usd", "us$": "usd", "usd": "usd", "dollar": "usd", "dollars": "usd",
    "€": "eur", "eur": "eur", "euro": "eur", "euros": "eur",
    "£": "gbp", "gbp": "gbp", "pound": "gbp", "pounds": "gbp",
    "¥": "jpy", "yen": "jpy", "₴": "uah", "hryvnia": "uah", "hryvnias": "uah",
}

# Capitalised only because they open a sentence: never names on their own there.
SENTENCE_STARTERS = frozenset(
    ["despite", "after", "before", "during", "although", "though", "meanwhile", "additionally", "in", "on", "at", "as", "the", "this", "that", "these", "those", "following", "earlier", "later", "today", "yesterday", "tomorrow", "while", "when", "since", "recently", "previously", "according", "officials", "police", "sources", "some", "many", "several", "both", "each", "such", "critics", "analysts", "experts", "residents", "authorities", "witnesses", "however", "but", "and", "or", "so", "yet", "then", "there", "here", "it", "its", "his", "her", "their", "our", "we", "they", "he", "she", "you", "i", "a", "an", "if", "once", "because", "instead", "last", "next", "first", "finally", "overall", "still", "even", "now", "thus", "therefore", "also", "another", "other", "most", "more", "less", "few", "all", "no", "not", "nobody", "none", "nothing", "only", "every", "what", "which", "who", "whom", "whose", "where", "why", "how", "timeline", "update", "updated", "breaking", "exclusive", "watch", "read", "photo", "video", "editor", "note"]
)

# Everyday verbs and nouns that carry little of a fact on their own ("met with", "the need
# for", "included"): they count for less when asking whether a sentence was already said.
LIGHT = frozenset(
    ["includ", "met", "meet", "need", "make", "made", "take", "took", "give", "gave", "get", "got", "put", "come", "came", "go", "went", "ongo", "seen", "see", "hold", "held", "keep", "kept", "set", "use", "show", "bring", "brought", "aim", "part", "parti", "side", "way", "thing", "origin", "initi", "other", "new", "mani", "sever", "various", "continu", "regard", "involv", "call", "given"]
)

# "1st" and "first" are one word; ordinals are sequence, not figures.
ORDINALS = {
    "1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth", "6th": "sixth",
    "7th": "seventh", "8th": "eighth", "9th": "ninth", "10th": "tenth",
}
