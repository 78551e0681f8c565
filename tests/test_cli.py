"""The CLI as a user runs it: a real process, a config file, JSON a script can read."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def newsmon(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "newsmon.toml").write_text(
        f'data_dir = "data"\nrules_dir = "{ROOT / "rules"}"\n\n[[feeds]]\nurl = "{ROOT / "seeds"}"\n'
    )
    return tmp_path


def test_run_once_then_list_as_json(workdir):
    first = newsmon("--config", "newsmon.toml", "run", "--once", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "[New story]" in first.stdout and "Why new:" in first.stdout
    assert (workdir / "data" / "newsmon.db").exists()
    alerts = (workdir / "data" / "alerts.jsonl").read_text().splitlines()

    stories = json.loads(newsmon("--config", "newsmon.toml", "stories", "list", "--json", cwd=workdir).stdout)
    assert len(stories) == 1
    assert {"id", "title", "first_seen", "last_seen", "articles"} <= set(stories[0])
    assert {"url", "title", "source", "published_at"} <= set(stories[0]["articles"][0])

    devs = json.loads(newsmon("--config", "newsmon.toml", "developments", "list", "--json", cwd=workdir).stdout)
    assert len(devs) == len(alerts) > 3
    fields = {"id", "story_id", "story_title", "kind", "text", "score", "source", "article_url",
              "published_at", "detected_at", "closest_earlier", "sources"}
    for dev in devs:
        assert fields <= set(dev)
    facts = [d for d in devs if d["kind"] == "new_fact"]
    assert all(0 <= d["closest_earlier"]["similarity"] < 1 and d["closest_earlier"]["text"] for d in facts)
    only_new = json.loads(newsmon("--config", "newsmon.toml", "developments", "list", "--kind", "new_story",
                                  "--json", cwd=workdir).stdout)
    assert [d["kind"] for d in only_new] == ["new_story"]

    again = newsmon("--config", "newsmon.toml", "run", "--once", cwd=workdir)
    assert again.returncode == 0 and "[New" not in again.stdout
    assert (workdir / "data" / "alerts.jsonl").read_text().splitlines() == alerts

    fact = facts[0]
    explained = newsmon("--config", "newsmon.toml", "developments", "show", str(fact["id"]), cwd=workdir).stdout
    assert f"Development #{fact['id']} [new_fact]" in explained and "Why new" in explained
    assert fact["closest_earlier"]["text"] in explained and "[outlet-003]" not in explained

    shown = newsmon("--config", "newsmon.toml", "stories", "show", str(stories[0]["id"]), cwd=workdir)
    assert "updated version of the agreement" in shown.stdout
    feeds = json.loads(newsmon("--config", "newsmon.toml", "feeds", "list", "--json", cwd=workdir).stdout)
    assert feeds[0]["status"] == "ok" and feeds[0]["articles_seen"] == 2


def test_environment_overrides_the_file(workdir):
    result = newsmon("--config", "newsmon.toml", "run", "--once", cwd=workdir,
                     env={"NEWSMON_DATABASE_URL": f"sqlite:///{workdir / 'other.db'}"})
    assert result.returncode == 0, result.stderr
    assert (workdir / "other.db").exists() and not (workdir / "data" / "newsmon.db").exists()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('poll_interval = "often"\n', "newsmon.toml: poll_interval"),
        ('[[feeds]]\nurl = "x"\nintervall = "5m"\n', "newsmon.toml: feeds.0.intervall"),
        ("database_url = [\n", "newsmon.toml: not valid TOML"),
        ('[channels.x]\nkind = "pigeon"\n', "channels.x.kind"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path, toml, expected):
    (tmp_path / "newsmon.toml").write_text(toml)
    result = newsmon("--config", "newsmon.toml", "run", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_db_upgrade_reports_the_revision(workdir):
    result = newsmon("--config", "newsmon.toml", "db", "upgrade", cwd=workdir)
    assert result.returncode == 0 and "revision" in result.stdout


def test_db_vacuum_gives_back_free_space_and_keeps_every_story(workdir):
    assert newsmon("--config", "newsmon.toml", "run", "--once", cwd=workdir).returncode == 0
    stories = newsmon("--config", "newsmon.toml", "stories", "list", "--json", cwd=workdir).stdout
    path = workdir / "data" / "newsmon.db"
    with sqlite3.connect(path) as connection:  # a table that came and went: its pages are free
        connection.execute("CREATE TABLE scratch (x TEXT)")
        connection.executemany("INSERT INTO scratch VALUES (?)", [("x" * 1000,)] * 2000)
        connection.commit()
        connection.execute("DROP TABLE scratch")
        connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.stat().st_size
    result = newsmon("--config", "newsmon.toml", "db", "vacuum", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "vacuumed" in result.stdout and "MB" in result.stdout
    assert path.stat().st_size < before - 1_000_000
    assert newsmon("--config", "newsmon.toml", "stories", "list", "--json", cwd=workdir).stdout == stories


def test_db_vacuum_on_postgresql(request):
    from conftest import _pg_database

    database = _pg_database(request.getfixturevalue("pg_schema"))
    database.upgrade()
    reltuples = ("SELECT reltuples FROM pg_class WHERE relname = 'story_terms' "
                 "AND relnamespace = current_schema()::regnamespace")
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql(reltuples).scalar_one() == -1  # never analysed
        database.vacuum()  # VACUUM cannot run in a transaction block: this one runs outside any
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql(reltuples).scalar_one() == 0  # analysed: empty
    finally:
        database.dispose()
