"""Rule files: matching (a table in tests/cases/rules.yaml) and every kind of error message."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from monitor.config import Settings
from monitor.errors import RuleError
from monitor.model import DevelopmentView, SourceRef
from monitor.rules import Rule, RuleSet, fingerprint, load_rules

ROOT = Path(__file__).resolve().parent.parent
CASES = yaml.safe_load((ROOT / "tests" / "cases" / "rules.yaml").read_text(encoding="utf-8"))
CHANNELS = {"console", "jsonl", "email", "slack", "ops"}

BASE = DevelopmentView(
    id=10,
    story_id=1,
    story_title="Council budget vote",
    kind="new_fact",
    text="The council approved the budget.",
    score=0.5,
    source="Gazette",
    article_id=100,
    article_url="https://gazette.example/budget",
    article_title="Budget approved",
    published_at=datetime(2026, 11, 23, 10, 5, tzinfo=UTC),
    detected_at=datetime(2026, 11, 23, 10, 6, tzinfo=UTC),
    closest_text=None,
    closest_similarity=None,
    sources=(SourceRef("Gazette", "https://gazette.example/budget", 100),),
)


def development(**changes) -> DevelopmentView:
    if "sources" in changes:
        changes["sources"] = tuple(
            SourceRef(name, None, 100 + index) for index, name in enumerate(changes["sources"])
        )
    return dataclasses.replace(BASE, **changes)


def write(folder: Path, files: dict[str, object]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def load_text(tmp_path: Path, text: str, name: str = "x.yaml", channels: set[str] = CHANNELS) -> RuleSet:
    return load_rules(write(tmp_path / "rules", {name: text}), channels)


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_matching(case, tmp_path):
    files = case.get("files") or {"rules.yaml": case["rules"]}
    ruleset = load_rules(write(tmp_path / "rules", files), CHANNELS)
    matches = ruleset.match(development(**case["development"]))
    assert matches == [tuple(pair) for pair in case["expect"]]


# --- errors: each names the file, the line and the field ----------------------------------


def raises(tmp_path: Path, text: str, channels: set[str] = CHANNELS) -> RuleError:
    with pytest.raises(RuleError) as caught:
        load_text(tmp_path, text, channels=channels)
    return caught.value


def test_out_of_range_value_names_file_line_and_field(tmp_path):
    error = raises(
        tmp_path,
        """\
rules:
  - name: ok
    channels: [console]
  - name: too-high
    channels: [console]
    kinds: [new_fact]
    min_score: 1.5
""",
    )
    path = tmp_path / "rules" / "x.yaml"
    assert (error.path, error.line, error.field) == (str(path), 7, "rules[1].min_score")
    assert (
        str(error) == f"rule error in {path}:7: rules[1].min_score: Input should be less than or equal to 1"
    )


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path):
    error = raises(tmp_path, "name: typo\nchannels: [console]\nkeyword: [flood]\n")
    assert (error.line, error.field) == (3, "keyword")
    assert error.message == "unknown key (did you mean 'keywords'?)"


def test_a_misspelt_required_key_is_reported_as_unknown_not_missing(tmp_path):
    error = raises(tmp_path, "name: a\nchanels: [console]\n")
    assert (error.line, error.field, error.message) == (
        2,
        "chanels",
        "unknown key (did you mean 'channels'?)",
    )


def test_unknown_key_at_file_level_of_a_rule_list(tmp_path):
    error = raises(tmp_path, "rules:\n  - name: a\n    channels: [console]\nrule: []\n")
    assert (error.line, error.field) == (4, "rule")
    assert error.message == "unknown key (did you mean 'rules'?)"


def test_unknown_channel_names_the_item_and_the_configured_channels(tmp_path):
    error = raises(tmp_path, "rules:\n  - name: a\n    channels:\n      - console\n      - slak\n")
    assert (error.line, error.field) == (5, "rules[0].channels[1]")
    assert error.message == (
        "unknown channel 'slak' (did you mean 'slack'?) (configured: console, email, jsonl, ops, slack)"
    )


def test_unknown_channel_when_none_are_configured(tmp_path):
    error = raises(tmp_path, "name: a\nchannels: [console]\n", channels=set())
    assert (error.line, error.field) == (2, "channels[0]")
    assert error.message == "unknown channel 'console': no channels are configured"


def test_unknown_kind_lists_the_kinds(tmp_path):
    error = raises(tmp_path, "name: a\nchannels: [console]\nkinds:\n  - new_fact\n  - new_facts\n")
    assert (error.line, error.field) == (5, "kinds[1]")
    assert error.message.startswith("Input should be 'new_story', 'new_fact', 'changed_figure'")


def test_missing_field_points_at_the_rule(tmp_path):
    error = raises(tmp_path, "rules:\n  - name: a\n    channels: [console]\n  - kinds: [new_fact]\n")
    assert (error.line, error.field, error.message) == (4, "rules[1].name", "Field required")


def test_a_list_given_as_a_block_points_at_its_key(tmp_path):
    error = raises(tmp_path, "name: a\nchannels: []\n")
    assert (error.line, error.field) == (2, "channels")
    assert "at least 1 item" in error.message


def test_wrong_type_of_a_list_item(tmp_path):
    error = raises(tmp_path, "name: a\nchannels: [console]\nstories: [12, twelve]\n")
    assert (error.line, error.field) == (3, "stories[1]")
    assert error.message == "Input should be a valid integer"


def test_a_boolean_is_not_a_score(tmp_path):
    error = raises(tmp_path, "name: a\nchannels: [console]\nmin_score: yes\n")
    assert (error.line, error.field, error.message) == (3, "min_score", "Input should be a valid number")


def test_yaml_booleans_where_a_string_is_expected_get_a_hint(tmp_path):
    error = raises(tmp_path, "name: off\nchannels: [console]\n")
    assert (error.line, error.field) == (1, "name")
    assert error.message == (
        "Input should be a valid string (YAML reads yes, no, on and off as true/false; quote the value)"
    )


def test_rule_name_used_twice_across_files_names_both_places(tmp_path):
    folder = write(
        tmp_path / "rules",
        {
            "a.yaml": "name: floods\nchannels: [console]\n",
            "b.yaml": (
                "rules:\n  - name: other\n    channels: [console]\n  - name: floods\n    channels: [ops]\n"
            ),
        },
    )
    with pytest.raises(RuleError) as caught:
        load_rules(folder, CHANNELS)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(folder / "b.yaml"), 4, "rules[1].name")
    assert error.message == f"rule name 'floods' is already used at {folder / 'a.yaml'}:1"


def test_yaml_syntax_error_names_the_line(tmp_path):
    error = raises(tmp_path, "name: a\nchannels: [console\nkinds: [new_fact]\n")
    assert error.line == 3
    assert error.message.startswith("not valid YAML: ")
    assert error.field is None


def test_a_key_given_twice_is_an_error(tmp_path):
    # PyYAML would silently keep the last one; the first condition would vanish.
    error = raises(tmp_path, "name: a\nchannels: [console]\nkeywords: [flood]\nkeywords: [fire]\n")
    assert (error.line, error.message) == (4, "key 'keywords' appears twice")


def test_a_file_must_hold_a_mapping(tmp_path):
    error = raises(tmp_path, "- name: a\n  channels: [console]\n")
    assert error.line == 1
    assert error.message == "expected a rule (a mapping) or `rules:` with a list of rules"


def test_a_file_must_be_utf8(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "latin1.yaml").write_bytes("name: caf\xe9\nchannels: [console]\n".encode("latin-1"))
    with pytest.raises(RuleError, match=re.escape("latin1.yaml: not UTF-8 text")):
        load_rules(folder, CHANNELS)


def test_missing_folder(tmp_path):
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path / "nowhere", CHANNELS)
    assert str(caught.value) == f"rule error in {tmp_path / 'nowhere'}: rules folder not found"


# --- the rule set as a whole ---------------------------------------------------------------


def test_rules_know_where_they_were_defined(tmp_path):
    ruleset = load_text(
        tmp_path, "# two rules\nrules:\n  - name: a\n    channels: [ops]\n  - name: b\n    channels: [ops]\n"
    )
    assert [rule.where for rule in ruleset] == [
        f"{tmp_path / 'rules' / 'x.yaml'}:3",
        f"{tmp_path / 'rules' / 'x.yaml'}:5",
    ]
    assert len(ruleset) == 2


def test_changes_on_disk_are_noticed(tmp_path):
    ruleset = load_text(tmp_path, "name: a\nchannels: [ops]\n")
    folder = tmp_path / "rules"
    assert ruleset.files == fingerprint(folder)
    assert list(ruleset.files) == [folder / "x.yaml"]
    assert not ruleset.changed_on_disk()

    (folder / "x.yaml").write_text("name: a\nchannels: [console]\n", encoding="utf-8")
    assert ruleset.changed_on_disk()
    ruleset = load_rules(folder, CHANNELS)
    (folder / "y.yml").write_text("name: b\nchannels: [ops]\n", encoding="utf-8")
    assert ruleset.changed_on_disk()
    ruleset = load_rules(folder, CHANNELS)
    (folder / "y.yml").unlink()
    assert ruleset.changed_on_disk()


def test_rules_are_immutable(tmp_path):
    rule = next(iter(load_text(tmp_path, "name: a\nchannels: [ops]\n")))
    assert isinstance(rule, Rule)
    with pytest.raises(Exception, match="frozen"):
        rule.min_score = 0.9


def test_default_rules_send_everything_to_the_default_channels(tmp_path):
    settings = Settings(data_dir=tmp_path)
    ruleset = load_rules(ROOT / "rules", set(settings.channels))
    for kind in ("new_story", "new_fact", "changed_figure", "new_date", "revision"):
        assert ruleset.match(development(kind=kind, score=0.0)) == [
            ("everything", "console"),
            ("everything", "jsonl"),
        ]


# --- documentation that cannot rot ----------------------------------------------------------

DOC_CHANNELS = {"console", "jsonl", "email", "slack", "newsroom-slack", "ops-email"}


def test_example_rule_files_load(tmp_path):
    ruleset = load_rules(ROOT / "docs" / "examples" / "rules", DOC_CHANNELS)
    assert len(ruleset) >= 3


def test_yaml_examples_in_docs_are_valid_rules(tmp_path):
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    for index, block in enumerate(blocks):
        folder = write(tmp_path / f"block{index}", {"rule.yaml": block})
        load_rules(folder, DOC_CHANNELS)
