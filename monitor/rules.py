"""Rules: which developments go to which channels.

Rule files are YAML in one folder (`rules/*.yaml`, `*.yml`, read in name order). A file holds
one rule, or a list of rules under `rules:`:

    name: floods
    channels: [console, slack]
    kinds: [new_fact, changed_figure]
    min_score: 0.5
    keywords: [flood, "storm surge"]
    exclude_keywords: [drill]

Everything a rule says must hold for it to match (see `Rule.matches`); a rule with no
conditions matches every development. The module is pure: it reads rule files, and
matching is a function of a rule and a `DevelopmentView` (docs/rules.md).

Validation is strict on purpose. An unknown key is an error, because a misspelt
condition (`keyword:`) that were silently ignored would make the rule match everything.
Every error names the file, the line and the field: the line comes from YAML's node
marks, found by walking the composed node tree along the location pydantic reports.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from monitor.errors import RuleError
from monitor.model import DevelopmentView, FeedEventView, Kind

RULE_SUFFIXES = (".yaml", ".yml")

KindName = Literal[Kind.ALL + Kind.FEED_HEALTH]  # one source of truth for the kinds: monitor.model.Kind

NonEmpty = Annotated[str, Field(min_length=1)]


class Rule(BaseModel):
    """One rule as written in a file; `matches` decides whether a development concerns it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: NonEmpty
    channels: tuple[NonEmpty, ...] = Field(min_length=1)
    description: str | None = None
    enabled: bool = True
    kinds: tuple[KindName, ...] = Kind.ALL + Kind.FEED_HEALTH
    # strict: YAML hands over real numbers, and `min_score: yes` must not quietly mean 1.0
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False, strict=True)
    keywords: tuple[NonEmpty, ...] = ()
    exclude_keywords: tuple[NonEmpty, ...] = ()
    sources: tuple[NonEmpty, ...] = ()
    stories: tuple[Annotated[int, Field(ge=1, strict=True)], ...] = ()

    _keywords: re.Pattern[str] | None = PrivateAttr(default=None)
    _excluded: re.Pattern[str] | None = PrivateAttr(default=None)
    _where: str = PrivateAttr(default="")

    @field_validator("channels", "kinds", "keywords", "exclude_keywords", "sources", "stories", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # `keywords: flood` reads as naturally as `keywords: [flood]`; accept both.
        return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value

    @field_validator("channels", "kinds")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))  # drop repeats, keep the written order

    def model_post_init(self, _context: Any) -> None:
        self._keywords = _words_pattern(self.keywords)
        self._excluded = _words_pattern(self.exclude_keywords)

    @property
    def where(self) -> str:
        """`path:line` of the rule's definition, for messages and `newsmon rules list`."""
        return self._where

    def matches(self, view: DevelopmentView | FeedEventView) -> bool:
        """True when the development satisfies every condition the rule sets.

        kinds: the development's kind is one of them · min_score: its score is at least this ·
        keywords: one of them occurs, as whole words and ignoring case, in the development's
        text or the story title · exclude_keywords: none of them occurs there · sources: the
        reporting outlet or one of the corroborating outlets is one of them (ignoring case) ·
        stories: the development belongs to one of these stories.

        A feed event (feed_down, feed_recovered) matches on kinds, keywords and
        exclude_keywords (against its sentence, which names the feed and the error) and
        sources (the feed's title or URL); a rule that sets min_score or stories is about
        developments and never matches one.
        """
        if isinstance(view, FeedEventView):
            return self._matches_event(view)
        if not self.enabled or view.kind not in self.kinds or view.score < self.min_score:
            return False
        if self.stories and view.story_id not in self.stories:
            return False
        if self.sources:
            wanted = {source.casefold() for source in self.sources}
            outlets = {view.source.casefold()} | {ref.source.casefold() for ref in view.sources}
            if not wanted & outlets:
                return False
        return self._text_matches(f"{view.text}\n{view.story_title}")

    def _matches_event(self, event: FeedEventView) -> bool:
        if not self.enabled or event.kind not in self.kinds or self.min_score > 0 or self.stories:
            return False
        if self.sources:
            names = {(event.feed_title or "").casefold(), event.feed_url.casefold()}
            if not {source.casefold() for source in self.sources} & names:
                return False
        return self._text_matches(event.text)

    def _text_matches(self, haystack: str) -> bool:
        if self._keywords is not None and not self._keywords.search(haystack):
            return False
        return self._excluded is None or not self._excluded.search(haystack)


def _words_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of `words` as whole words, ignoring case.

    Lookarounds rather than `\\b`, so that keywords which begin or end with a non-word
    character ("C++", "$5bn") still need a word boundary outside them; inner whitespace
    matches any run of whitespace, so "storm surge" matches across a line break.
    """
    alternatives = [r"\s+".join(map(re.escape, word.split())) for word in words]
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


class _RuleList(BaseModel):
    """The shape of a file that holds several rules."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]


@dataclass(frozen=True)
class RuleSet:
    """The rules of one folder, in file-name order then written order."""

    folder: Path
    rules: tuple[Rule, ...] = ()
    files: dict[Path, str] = field(default_factory=dict)  # every rule file read → sha256 of its bytes

    def match(self, view: DevelopmentView | FeedEventView) -> list[tuple[str, str]]:
        """(rule name, channel) for every enabled rule that matches, in rule order, no repeats."""
        pairs: dict[tuple[str, str], None] = {}
        for rule in self.rules:
            if rule.matches(view):
                for channel in rule.channels:
                    pairs[(rule.name, channel)] = None
        return list(pairs)

    def changed_on_disk(self) -> bool:
        """True when a rule file was added, removed or edited since these rules were loaded.

        Content hashes, not mtimes: an editor that saves twice within the clock's
        resolution, or a checkout that restores old mtimes, must still be noticed.
        """
        return fingerprint(self.folder) != self.files

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def rule_files(folder: Path) -> list[Path]:
    """The rule files of a folder, in name order; hidden files (editor swap files) are skipped."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in RULE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def fingerprint(folder: Path) -> dict[Path, str]:
    """path → sha256 of every rule file in the folder; compare two to see whether to reload."""
    if not folder.is_dir():
        return {}
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in rule_files(folder)}


def load_rules(folder: Path, channel_names: set[str]) -> RuleSet:
    """Read and validate every rule file of `folder`.

    Raises RuleError for the first problem found: a missing folder, a YAML syntax error, a
    field that does not validate, an unknown key, a rule name used twice, or a channel that
    is not in `channel_names` (the channels configured in settings).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RuleError(str(folder), "rules folder not found")
    rules: list[Rule] = []
    files: dict[Path, str] = {}
    first_definition: dict[str, str] = {}
    for path in rule_files(folder):
        raw = path.read_bytes()
        files[path] = hashlib.sha256(raw).hexdigest()
        for parsed in _read_file(path, raw):
            rule = parsed.rule
            _check_channels(path, parsed, channel_names)
            if rule.name in first_definition:
                raise RuleError(
                    str(path),
                    f"rule name {rule.name!r} is already used at {first_definition[rule.name]}",
                    line=_line(parsed.node, ("name",)),
                    field=_field_name((*parsed.loc, "name")),
                )
            first_definition[rule.name] = rule.where
            rules.append(rule)
    return RuleSet(folder=folder, rules=tuple(rules), files=files)


# --- reading one file -------------------------------------------------------------------


class _Parsed(NamedTuple):
    rule: Rule
    node: yaml.Node  # the rule's mapping node, to place later errors on a line
    loc: tuple[str | int, ...]  # the field path leading to it: () or ("rules", i)


def _read_file(path: Path, raw: bytes) -> list[_Parsed]:
    where = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RuleError(where, f"not UTF-8 text (byte {error.start})") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        raise RuleError(where, f"not valid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise RuleError(where, f"not valid YAML: {error}") from None
    finally:
        loader.dispose()

    if root is None or data is None:
        return []  # an empty (or all-comments) file holds no rules; that is allowed
    _reject_duplicate_keys(where, root)
    if not isinstance(data, dict):
        raise RuleError(where, "expected a rule (a mapping) or `rules:` with a list of rules", line=1)

    model: type[BaseModel] = _RuleList if "rules" in data else Rule
    try:
        validated = model.model_validate(data)
    except ValidationError as error:
        raise _rule_error(where, root, model, error) from None
    if isinstance(validated, _RuleList):
        items = _value(root, "rules")
        parsed = [
            _Parsed(rule, items.value[index], ("rules", index))  # type: ignore[union-attr]
            for index, rule in enumerate(validated.rules)
        ]
    else:
        parsed = [_Parsed(validated, root, ())]  # type: ignore[arg-type]
    for rule, node, _ in parsed:
        rule._where = f"{where}:{node.start_mark.line + 1}"
    return parsed


def _check_channels(path: Path, parsed: _Parsed, channel_names: set[str]) -> None:
    for index, channel in enumerate(parsed.rule.channels):
        if channel in channel_names:
            continue
        if channel_names:
            hint = _did_you_mean(channel, channel_names)
            message = f"unknown channel {channel!r}{hint} (configured: {', '.join(sorted(channel_names))})"
        else:
            message = f"unknown channel {channel!r}: no channels are configured"
        raise RuleError(
            str(path),
            message,
            line=_line(parsed.node, ("channels", index)),
            field=_field_name((*parsed.loc, "channels", index)),
        )


def _rule_error(where: str, root: yaml.Node, model: type[BaseModel], error: ValidationError) -> RuleError:
    """One error for a failed validation: the one a person should fix first."""
    problems = []
    for problem in error.errors():
        loc = tuple(problem["loc"])
        if problem["type"] == "extra_forbidden":
            # Keys of the file level when that is where the stray key sits, else of a rule.
            known = _RuleList.model_fields if model is _RuleList and len(loc) == 1 else Rule.model_fields
            message = f"unknown key{_did_you_mean(str(loc[-1]), known)}"
        elif problem["type"] == "string_type" and isinstance(problem["input"], bool):
            # YAML 1.1 reads yes/no/on/off/true/false as booleans: `name: off` is not a string.
            message = f"{problem['msg']} (YAML reads yes, no, on and off as true/false; quote the value)"
        else:
            message = problem["msg"]
        unknown_key = problem["type"] == "extra_forbidden"
        problems.append((not unknown_key, _line(root, loc) or 0, _field_name(loc), message))
    # A misspelt key also makes its field "missing": report the cause, the unknown key, first;
    # then the earliest line, where a person starts reading.
    _, line, field_name, message = min(problems, key=lambda problem: problem[:2])  # ties: pydantic's order
    return RuleError(where, message, line=line or None, field=field_name)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_name(loc: Iterable[str | int]) -> str | None:
    """('rules', 0, 'min_score') → 'rules[0].min_score'."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


# --- YAML nodes: from a field's location to its line -------------------------------------


def _value(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    """The value under a mapping key, or the item at a sequence index; None if absent."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _key(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return key_node
    return None


def _line(root: yaml.Node, loc: Iterable[str | int]) -> int | None:
    """1-based line of the node at `loc` (a pydantic error location), or of its nearest ancestor.

    A field's error points at its value; when that value is a block (a list or mapping that
    starts on the next line) it points at the key instead, which is where a person looks.
    A missing field has no node of its own, so its error lands on the mapping that lacks it.
    """
    node: yaml.Node | None = root
    steps = tuple(loc)
    for depth, key in enumerate(steps):
        step = _value(node, key)
        if step is None:
            break
        if depth == len(steps) - 1 and isinstance(step, yaml.MappingNode | yaml.SequenceNode):
            step = _key(node, key) or step
        node = step
    return None if node is None else node.start_mark.line + 1


def _reject_duplicate_keys(where: str, node: yaml.Node) -> None:
    """PyYAML keeps the last of two equal keys without a word; in a rule that hides a condition."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise RuleError(
                        where, f"key {key_node.value!r} appears twice", line=key_node.start_mark.line + 1
                    )
                seen.add(key_node.value)
            _reject_duplicate_keys(where, value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(where, item)
