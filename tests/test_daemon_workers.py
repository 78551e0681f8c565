"""Daemons as a deployment runs them: two `newsmon run` workers on one PostgreSQL database share
the feeds without polling one twice or storing, detecting or alerting anything twice; and a
SIGHUP with a broken rule file keeps the last good rules in force. Waits are on conditions with
a deadline, never on a fixed sleep."""

from __future__ import annotations

import itertools
import json
import re
import signal
from collections import Counter
from pathlib import Path

from conftest import PG_URL, _pg_database
from feedserver import FeedServer, Reply
from sqlalchemy import create_engine, func, select
from test_daemon import newsmon, wait_for
from test_feed_polling import rss

from storage import models as m

FEEDS = 6
PERIOD = 2.0  # every feed is due every PERIOD seconds (± 10% jitter)


def _config(workdir: Path, database_url: str, rules: Path, urls: list[str]) -> None:
    workdir.mkdir()
    feeds = "".join(f'[[feeds]]\nurl = "{url}"\n' for url in urls)
    (workdir / "newsmon.toml").write_text(
        f'data_dir = "data"\ndatabase_url = "{database_url}"\nrules_dir = "{rules}"\n'
        f'fetch_allow_private = true\nfetch_concurrency = 1\nshutdown_grace = "5s"\n'
        f'poll_interval = "{PERIOD}s"\nmin_interval = "{PERIOD}s"\nmax_interval = "{PERIOD}s"\n'
        f'[channels.jsonl]\nkind = "jsonl"\npath = "data/alerts.jsonl"\n{feeds}')


def _versioned(counts: dict[str, int], path: str):
    def handler(seen):
        etag = f'"{counts[path]}"'
        if seen.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        return Reply(200, rss(counts[path], title=path), {"ETag": etag, "Content-Type": "application/rss+xml"})
    return handler


def test_two_workers_on_one_postgresql_share_the_feeds_and_repeat_nothing(tmp_path, pg_schema):
    database = _pg_database(pg_schema)  # a fresh schema, migrated, before either worker starts
    database.upgrade()
    database.dispose()
    database_url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "all.yaml").write_text("name: everything\nchannels: [jsonl]\n")
    paths = [f"/feed{i}" for i in range(FEEDS)]
    counts = dict.fromkeys(paths, 3)
    engine = create_engine(database_url)

    def stored() -> int:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(m.Article))

    with FeedServer() as server:
        for path in paths:
            server.route(path, _versioned(counts, path))
        urls = [server.url(path) for path in paths]
        workers = [tmp_path / "worker-a", tmp_path / "worker-b"]
        for workdir in workers:
            _config(workdir, database_url, rules, urls)
        logs = [(workdir / "daemon.log").open("w") for workdir in workers]
        daemons = [newsmon(workdir, "--log-level", "debug", "run", stderr=log)
                   for workdir, log in zip(workers, logs, strict=True)]
        try:
            wait_for(lambda: stored() == 3 * FEEDS, what="every feed's first entries stored")
            for path in paths:  # every feed gains two entries: new developments while both run
                counts[path] = 5
            wait_for(lambda: stored() == 5 * FEEDS, what="the new entries stored")
            polled_after = {path: len(server.requests_to(path)) + 2 for path in paths}
            wait_for(lambda: all(len(server.requests_to(p)) >= polled_after[p] for p in paths),
                     what="two more rounds of 304s")
            for daemon in daemons:
                daemon.send_signal(signal.SIGTERM)
            assert [daemon.wait(timeout=30) for daemon in daemons] == [0, 0]
        finally:
            for daemon in daemons:
                daemon.kill()
                daemon.wait()
            for log in logs:
                log.close()
        requests = {path: server.requests_to(path) for path in paths}

    outputs = [(workdir / "daemon.log").read_text() for workdir in workers]
    for output in outputs:
        assert "Traceback" not in output and "the poll failed" not in output, output[-3000:]
    # Both workers polled, and between them every feed.
    polled_by = [set(re.findall(r"polled (\S+):", output)) for output in outputs]
    assert all(polled_by) and set.union(*polled_by) == set(urls), polled_by
    # No feed was polled by both in one due period: the server saw each feed's requests at least
    # a period apart (less the jitter), never two at once.
    for path, seen in requests.items():
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(seen)]
        assert len(seen) >= 4 and min(gaps) > 0.8 * PERIOD, (path, [round(gap, 2) for gap in gaps])
    with engine.connect() as connection:
        articles = connection.execute(select(m.Article.feed_id, m.Article.guid)).all()
        developments = connection.execute(select(m.Development.article_id, m.Development.kind,
                                                 m.Development.text)).all()
        alerts = connection.execute(select(m.Alert.development_id, m.Alert.status)).all()
    engine.dispose()
    assert len(articles) == len(set(articles)) == 5 * FEEDS  # every entry once, none twice
    assert developments and len(developments) == len(set(developments))
    assert sorted(d for d, _ in alerts) == sorted({d for d, _ in alerts})  # one alert per development
    delivered = [json.loads(line) for workdir in workers if (workdir / "data" / "alerts.jsonl").exists()
                 for line in (workdir / "data" / "alerts.jsonl").read_text().splitlines()]
    assert [n for n in Counter(line["id"] for line in delivered).values() if n > 1] == []  # sent once
    assert len(delivered) + sum(status != "sent" for _, status in alerts) == len(alerts) == len(developments)


def test_sighup_with_a_broken_rule_file_keeps_the_last_good_rules(tmp_path):
    entries = {"n": 2}
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "all.yaml").write_text("name: everything\nchannels: [jsonl]\n")
    with FeedServer() as server:
        server.route("/rss", _versioned(entries, "n"))
        (tmp_path / "newsmon.toml").write_text(
            'data_dir = "data"\nrules_dir = "rules"\nfetch_allow_private = true\nshutdown_grace = "1s"\n'
            'poll_interval = "1s"\nmin_interval = "1s"\nmax_interval = "1s"\n'
            f'[channels.jsonl]\nkind = "jsonl"\npath = "data/alerts.jsonl"\n[[feeds]]\nurl = "{server.url("/rss")}"\n')
        log_path = tmp_path / "daemon.log"
        engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}")

        def log_text() -> str:
            return log_path.read_text()

        def alerts_for(guid: str) -> int:  # alerts the rules raised on that entry's developments
            with engine.connect() as connection:
                return connection.scalar(select(func.count()).select_from(m.Alert)
                                         .join(m.Development, m.Development.id == m.Alert.development_id)
                                         .join(m.Article, m.Article.id == m.Development.article_id)
                                         .where(m.Article.guid == guid))

        with log_path.open("w") as log:
            daemon = newsmon(tmp_path, "run", stderr=log)
            try:
                wait_for(lambda: "newsmon running" in log_text(), what="the daemon started")
                (rules / "zz-broken.yaml").write_text("name: broken\nchannels: [jsonl]\nkinds: [no_such_kind]\n")
                daemon.send_signal(signal.SIGHUP)
                wait_for(lambda: "rules not reloaded" in log_text(), what="the broken file reported")
                report = next(line for line in log_text().splitlines() if "rules not reloaded" in line)
                assert "the previous 1 rule(s) stay in force" in report and "zz-broken.yaml" in report
                entries["n"] = 3  # a new entry: the old rule must still alert on it
                wait_for(lambda: alerts_for("g2") > 0, what="an alert under the old rules")
                (rules / "zz-broken.yaml").write_text("name: fixed\nchannels: [jsonl]\n")
                daemon.send_signal(signal.SIGHUP)
                wait_for(lambda: "rules reloaded: 2 rule(s)" in log_text(), what="the fixed rules loaded")
                daemon.send_signal(signal.SIGTERM)
                assert daemon.wait(timeout=30) == 0
            finally:
                daemon.kill()
                daemon.wait()
        engine.dispose()
    assert "Traceback" not in log_text()
