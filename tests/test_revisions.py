"""Table-driven revision cases (tests/cases/revisions.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.revisions import compare

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "revisions.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_kind_of_edit(case):
    revision = compare(case["old"]["title"], case["old"]["text"], case["new"]["title"], case["new"]["text"])
    assert revision.edit == case["edit"], revision.to_json()
    assert revision.substantive == (case["edit"] != "cosmetic")
    if "added" in case:
        assert revision.added == case["added"]
