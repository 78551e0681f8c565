"""Idempotent ingest, versions, corroboration and the outbox, through the real pipeline."""

from __future__ import annotations

import json
import shutil

from sqlalchemy import func, select

from storage import models as m
from tests.pipeline_helpers import FIRST, SECOND, run_once, seed_folder, settings_for


def _count(db, model) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_second_run_changes_nothing_and_sends_nothing(db, tmp_path):
    from monitor import alerts
    from notifiers import build_notifiers

    settings = settings_for(seed_folder(tmp_path), tmp_path, db)
    run_once(db, settings)
    notifiers = build_notifiers({"jsonl": settings.channels["jsonl"]})
    first = alerts.deliver_due(db, notifiers)
    counts = [_count(db, t) for t in (m.Article, m.Claim, m.Development, m.Alert)]
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert first.sent == len(lines) == _count(db, m.Development)
    assert {json.loads(line)["kind"] for line in lines} >= {"new_story", "new_fact"}

    reports = run_once(db, settings)
    assert reports[0].new_articles == 0
    again = alerts.deliver_due(db, notifiers)
    assert again.sent == 0
    assert [_count(db, t) for t in (m.Article, m.Claim, m.Development, m.Alert)] == counts
    assert (tmp_path / "alerts.jsonl").read_text().splitlines() == lines


def test_a_changed_body_is_a_new_version_in_the_same_story(db, tmp_path):
    folder = seed_folder(tmp_path)
    settings = settings_for(folder, tmp_path, db)
    run_once(db, settings)
    with (folder / SECOND).open("a") as handle:
        handle.write("\nUpdate: Ukraine's parliament will vote on the agreement on March 3, officials said.\n")
    run_once(db, settings)
    with db.session() as session:
        versions = session.scalars(select(m.Article).where(m.Article.guid == SECOND)
                                   .order_by(m.Article.version)).all()
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].story_id == versions[1].story_id
        revision = session.scalars(select(m.Development).where(m.Development.article_id == versions[1].id)).all()
    assert [d.kind for d in revision] == ["revision"]
    assert "March 3" in revision[0].text
    assert revision[0].details["edit"] == "appended update"
    assert versions[1].revision["added"] == [
        "Update: Ukraine's parliament will vote on the agreement on March 3, officials said."]


def test_a_cosmetic_edit_is_recorded_but_never_alerts(db, tmp_path):
    folder = seed_folder(tmp_path)
    settings = settings_for(folder, tmp_path, db)
    run_once(db, settings)
    alerts_before = _count(db, m.Alert)
    text = (folder / SECOND).read_text()
    (folder / SECOND).write_text(text.replace("Only time will tell", "Only time will tell,")
                                 .replace("$500 billion", "$500bn").replace("marathon", "Marathon"))
    run_once(db, settings)
    with db.session() as session:
        latest = session.scalars(select(m.Article).where(m.Article.guid == SECOND)
                                 .order_by(m.Article.version.desc())).first()
        assert latest.version == 2 and latest.revision["edit"] == "cosmetic"
        assert len(latest.revision["cosmetic"]) >= 3  # three sentences (and the title made from the first)
        assert session.scalar(select(func.count()).select_from(m.Development)
                              .where(m.Development.article_id == latest.id)) == 0
    assert _count(db, m.Alert) == alerts_before


def test_a_second_outlet_corroborates_instead_of_repeating(db, tmp_path):
    folder = seed_folder(tmp_path)
    shutil.copy(folder / SECOND, folder / "copy_of_000.txt")  # syndicated: same text, other file
    manifest = (folder / "manifest.toml").read_text()
    manifest += '[[articles]]\nfile = "copy_of_000.txt"\nsource = "outlet-wire"\npublished = 2025-02-23T09:00:00Z\n'
    (folder / "manifest.toml").write_text(manifest)
    run_once(db, settings_for(folder, tmp_path, db))
    with db.session() as session:
        copy = session.scalars(select(m.Article).where(m.Article.guid == "copy_of_000.txt")).one()
        assert session.scalar(select(func.count()).select_from(m.Development)
                              .where(m.Development.article_id == copy.id)) == 0
        wire = session.scalars(select(m.DevelopmentSource.development_id)
                               .where(m.DevelopmentSource.source == "outlet-wire")).all()
        original = session.scalars(select(m.Development.id).join(m.Article)
                                   .where(m.Article.guid == SECOND)).all()
    assert wire and set(wire) <= set(original)


def test_first_article_files_without_manifest_entry_still_count(db, tmp_path):
    folder = seed_folder(tmp_path)
    (folder / "late.md").write_text("# Breaking\n\nKyiv confirmed on March 1 that the deal was signed.\n")
    run_once(db, settings_for(folder, tmp_path, db))
    with db.session() as session:
        late = session.scalars(select(m.Article).where(m.Article.guid == "late.md")).one()
    assert late.title == "Breaking"
    assert late.source == "feed"
    assert FIRST  # the seeds are still there
