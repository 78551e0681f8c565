"""Running the real pipeline over a folder of article files, for tests."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from monitor import polling
from monitor.config import ChannelConfig, FeedConfig, Settings
from monitor.rules import load_rules
from storage import models as m
from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIRST, SECOND = "003_922b7d489b1430c1.txt", "000_05ca3c854a4f2115.txt"


def seed_folder(tmp: Path, order: tuple[str, str] = (FIRST, SECOND)) -> Path:
    """A copy of the seeds whose manifest publishes them in `order`."""
    folder = tmp / "feed"
    folder.mkdir()
    lines = []
    for hour, name in zip((6, 18), order, strict=True):
        shutil.copy(SEEDS / name, folder / name)
        lines += ["[[articles]]", f'file = "{name}"', f'source = "outlet-{name[:3]}"',
                  f"published = 2025-02-22T{hour:02d}:00:00Z", ""]
    (folder / "manifest.toml").write_text("\n".join(lines))
    return folder


def settings_for(folder: Path, tmp: Path, db: Database) -> Settings:
    return Settings(
        database_url=db.url, data_dir=tmp / "data", rules_dir=ROOT / "rules",
        feeds=[FeedConfig(url=str(folder))],
        channels={"console": ChannelConfig(kind="console"),
                  "jsonl": ChannelConfig(kind="jsonl", path=str(tmp / "alerts.jsonl"))},
    )


def run_once(db: Database, settings: Settings):
    polling.sync_config_feeds(db, settings.feeds)
    ruleset = load_rules(settings.rules_dir, set(settings.channels))
    return asyncio.run(polling.poll_once(db, settings, ruleset))


def developments_of(db: Database, article_guid: str) -> list[m.Development]:
    from sqlalchemy import select

    with db.session() as session:
        return list(session.scalars(
            select(m.Development).join(m.Article, m.Article.id == m.Development.article_id)
            .where(m.Article.guid == article_guid).order_by(m.Development.id)))
