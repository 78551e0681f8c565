"""Figures: pairing a number in a new report with the number it replaces in an earlier one,
and writing canonical number tokens back as a person reads them.

"at least 24 dead" → "at least 43 dead" is a changed figure when both count the same thing
(the word after the number: "dead", or the currency of an amount) and the rest of the two
sentences says much the same.
"""

from __future__ import annotations

from monitor.model import Claim

_SCALES = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"))
_CURRENCY = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "uah": "₴"}


def unit(token: str) -> str:
    """'n:usd:5e11' → 'usd'; 'n:pct:5' → 'pct'; 'n:24' → ''."""
    parts = token.split(":")
    return parts[1] if len(parts) == 3 else ""


def value(token: str) -> float:
    return float(token.rsplit(":", 1)[-1])


def readable(token: str) -> str:
    """'n:usd:500000000000' → '$500 billion'; 'n:pct:5' → '5%'; 'n:43' → '43'."""
    amount = value(token)
    text = f"{amount:,.0f}" if amount.is_integer() else f"{amount:g}"
    for scale, word in _SCALES:
        if abs(amount) >= scale:
            text = f"{amount / scale:g} {word}"
            break
    kind = unit(token)
    if kind == "pct":
        return f"{text}%"
    if kind in _CURRENCY:
        return f"{_CURRENCY[kind]}{text}"
    return text


def changed_pairs(new: Claim, old: Claim) -> list[tuple[str, str]]:
    """(old token, new token) for each figure of `new` that replaces one of `old`.

    Two figures pair when they have the same unit and count the same word, and their values
    differ; when either sentence has a single figure of that unit, the counted word may be
    missing on one side ("toll rises to 43" after "24 dead").
    """
    pairs = []
    old_values = {token for token, _ in old.figures}
    for token, counted in new.figures:
        if token in old_values:
            continue
        same_unit = [(t, c) for t, c in old.figures if unit(t) == unit(token) and t != token]
        match = [t for t, c in same_unit if c == counted and c]
        if not match and len(same_unit) == 1 and sum(1 for t, _ in new.figures if unit(t) == unit(token)) == 1:
            match = [same_unit[0][0]]
        if match:
            pairs.append((match[0], token))
    return pairs
