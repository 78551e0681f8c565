"""The daemon as a user runs it: a subprocess against the loopback server, stopped with SIGTERM
in the middle of a poll; the next run loses nothing and repeats nothing. Waits are on
conditions with a deadline, never on a fixed sleep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from feedserver import FeedServer, Reply
from sqlalchemy import create_engine, func, select
from test_feed_polling import rss

from storage import models as m

ROOT = Path(__file__).resolve().parent.parent
BIG = 200  # entries: storing them must outlast the grace period below, or no poll is cut short


def wait_for(condition, deadline: float = 60.0, what: str = "condition"):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)  # a polling step, not a pacing sleep: the deadline is what bounds the wait
    raise AssertionError(f"timed out waiting for {what}")


def newsmon(workdir: Path, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(workdir / "newsmon.toml"),
                             "--log-level", "info", *args], cwd=workdir, env=env, **popen)


def test_sigterm_mid_poll_then_the_next_run_loses_nothing_and_repeats_nothing(tmp_path):
    slow_requests = []

    def slow(seen):  # the first request hangs (in flight at SIGTERM); later ones answer at once
        slow_requests.append(seen)
        return Reply(200, rss(3, title="Slow"), {"Content-Type": "application/rss+xml"},
                     delay=30 if len(slow_requests) == 1 else 0)

    with FeedServer() as server:
        server.feed("/big", rss(BIG, title="Big"), etag='"big"')
        server.feed("/small", rss(2, title="Small"))
        server.route("/slow", slow)
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "all.yaml").write_text("name: everything\nchannels: [jsonl]\n")
        feeds = "".join(f'[[feeds]]\nurl = "{server.url(p)}"\n' for p in ("/slow", "/big", "/small"))
        (tmp_path / "newsmon.toml").write_text(
            'data_dir = "data"\nrules_dir = "rules"\nfetch_allow_private = true\nshutdown_grace = "0.05s"\n'
            f'[channels.jsonl]\nkind = "jsonl"\npath = "data/alerts.jsonl"\n{feeds}')
        engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}")

        def stored(path: str | None = None) -> int:
            try:
                with engine.connect() as connection:
                    query = select(func.count()).select_from(m.Article).join(m.Feed)
                    if path:
                        query = query.where(m.Feed.url == server.url(path))
                    return connection.scalar(query)
            except Exception:  # the schema is not there yet
                return 0

        with (tmp_path / "daemon.log").open("w") as log:
            daemon = newsmon(tmp_path, "run", stderr=log)
            try:
                wait_for(lambda: slow_requests and 0 < stored("/big") < BIG, what="the big feed half stored")
                daemon.send_signal(signal.SIGTERM)
                assert daemon.wait(timeout=30) == 0
            finally:
                daemon.kill()
                daemon.wait()
        output = (tmp_path / "daemon.log").read_text()
        assert "stopping:" in output and "stopped" in output and "Traceback" not in output
        assert "the rest comes next run" in output  # the big feed was stopped between two entries
        first = stored()
        assert first < BIG + 3 + 2  # the slow feed at least was abandoned

        again = newsmon(tmp_path, "run", "--once", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        assert stored() == BIG + 3 + 2  # nothing lost
        engine.dispose()

    lines = [json.loads(line) for line in (tmp_path / "data" / "alerts.jsonl").read_text().splitlines()]
    assert lines, "no alert was delivered"
    assert len({line["alert_id"] for line in lines}) == len(lines)  # nothing sent twice
    repeated = [key for key, n in Counter(line["id"] for line in lines).items() if n > 1]
    assert repeated == []  # one alert per development (one rule, one channel)
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}")
    with engine.connect() as connection:
        developments = connection.scalar(select(func.count()).select_from(m.Development))
        pending = connection.scalar(select(func.count()).select_from(m.Alert).where(m.Alert.status != "sent"))
    engine.dispose()
    assert (developments, pending) == (len(lines), 0)


def test_a_daemon_killed_mid_poll_loses_no_article_and_stores_none_twice(tmp_path):
    """SIGKILL (a crash, an OOM kill) gives no grace: the entries of the transaction being
    written are lost with the process, and the feed's state says nothing of them, so the next
    run fetches the feed whole and stores them — once, with their developments once."""
    with FeedServer() as server:
        server.feed("/big", rss(BIG, title="Big"), etag='"big"')
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "all.yaml").write_text("name: everything\nchannels: [jsonl]\n")
        (tmp_path / "newsmon.toml").write_text(
            'data_dir = "data"\nrules_dir = "rules"\nfetch_allow_private = true\n'
            f'[channels.jsonl]\nkind = "jsonl"\npath = "data/alerts.jsonl"\n[[feeds]]\nurl = "{server.url("/big")}"\n')
        engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}")

        def count(*query_parts) -> int:
            try:
                with engine.connect() as connection:
                    return connection.scalar(select(func.count()).select_from(*query_parts))
            except Exception:  # the schema is not there yet
                return 0

        daemon = newsmon(tmp_path, "run", stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: 0 < count(m.Article) < BIG, what="the big feed partly stored")
            daemon.kill()
        finally:
            daemon.kill()
            daemon.wait()
        assert count(m.Article) < BIG
        with engine.connect() as connection:  # the poll was never recorded: the next run fetches it whole
            assert connection.execute(select(m.Feed.etag, m.Feed.last_polled_at)).one() == (None, None)

        again = newsmon(tmp_path, "run", "--once", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        with engine.connect() as connection:
            guids = list(connection.scalars(select(m.Article.guid)))
            per_article = connection.execute(
                select(m.Development.article_id, m.Development.kind, m.Development.text, func.count())
                .group_by(m.Development.article_id, m.Development.kind, m.Development.text)
                .having(func.count() > 1)).all()
        engine.dispose()
    assert len(guids) == len(set(guids)) == BIG  # every entry, each once
    assert per_article == []  # no development written twice
