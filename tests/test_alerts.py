"""The outbox on real databases (SQLite and PostgreSQL) with real notifiers and servers."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from test_notifiers import SLACK_PATH, SlackWebhookServer, free_port

from monitor.alerts import (
    DEAD,
    FAILED,
    PENDING,
    SENT,
    RetryPolicy,
    deliver_due,
    enqueue,
    list_alerts,
    requeue,
)
from monitor.config import ChannelConfig
from monitor.errors import NotifyError
from monitor.model import DevelopmentView
from monitor.rules import RuleSet, load_rules
from notifiers import AlertMessage, build_notifiers, close_notifiers
from storage.models import Alert, Article, Development, DevelopmentSource, Feed, Story
from storage.queries import load_development_view

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_delay=60, max_attempts=4, jitter=0.0, lease=300)


# --- helpers --------------------------------------------------------------------------------


def add_development(
    session,
    kind: str = "new_fact",
    text: str = "The council approved the flood budget.",
    sources: tuple[str, ...] = ("Gazette",),
) -> int:
    """Feed, story, one article per source and a development reported by all of them; its id."""
    feed = Feed(url=f"/feeds/{uuid.uuid4().hex}", kind="directory")
    story = Story(title="Riverton floods", first_seen=T0, last_seen=T0)
    session.add_all([feed, story])
    session.flush()
    articles = [
        Article(
            feed_id=feed.id,
            guid=f"{source}-{uuid.uuid4().hex}",
            url=f"https://{source.lower()}.example/{index}",
            title=f"{source} on the floods",
            source=source,
            published_at=T0 + timedelta(minutes=index),
            text=text,
            content_hash=uuid.uuid4().hex,
            story_id=story.id,
        )
        for index, source in enumerate(sources)
    ]
    session.add_all(articles)
    session.flush()
    development = Development(
        story_id=story.id,
        article_id=articles[0].id,
        kind=kind,
        text=text,
        score=0.8,
        closest_text="The council met.",
        closest_similarity=0.31,
        details={"figure": "1,200"},
        published_at=T0,
        detected_at=T0 + timedelta(minutes=1),
    )
    session.add(development)
    session.flush()
    session.add_all(
        DevelopmentSource(
            development_id=development.id,
            article_id=article.id,
            source=article.source,
            url=article.url,
            added_at=T0 + timedelta(minutes=index),
        )
        for index, article in enumerate(articles)
    )
    session.flush()
    return development.id


def rules(tmp_path: Path, text: str, channels: set[str]) -> RuleSet:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "rules.yaml").write_text(text, encoding="utf-8")
    return load_rules(folder, channels)


def stored(db, development_id: int | None = None) -> list[Alert]:
    with db.session() as session:
        query = select(Alert).order_by(Alert.id)
        if development_id is not None:
            query = query.where(Alert.development_id == development_id)
        return list(session.scalars(query))


def enqueue_one(db, ruleset: RuleSet, **development) -> DevelopmentView:
    with db.session() as session:
        view = load_development_view(session, add_development(session, **development))
        enqueue(session, ruleset, view, now=T0)
    return view


class Recorder:
    """A notifier that keeps what it is given, and can be told to fail or crash."""

    kind = "recorder"

    def __init__(self, name: str, fail_with: BaseException | None = None, crash_on: int | None = None):
        self.name, self.fail_with, self.crash_on = name, fail_with, crash_on
        self.sent: list[AlertMessage] = []
        self._lock = threading.Lock()

    def send(self, message: AlertMessage) -> None:
        with self._lock:
            if self.crash_on is not None and len(self.sent) + 1 == self.crash_on:
                raise Crash  # the process dies here
            if self.fail_with is not None:
                raise self.fail_with
            self.sent.append(message)

    def close(self) -> None:
        pass


class Crash(BaseException):
    """Stands for the process being killed: not an Exception, so nothing catches it."""


@pytest.fixture
def slack_channel(monkeypatch):
    """A slack notifier for a webhook on a free port, and the server to start there when wanted."""
    server = SlackWebhookServer(port=free_port())
    monkeypatch.setenv("NEWSMON_TEST_SLACK_URL", server.url)
    built = build_notifiers({"slack": ChannelConfig(kind="slack", webhook_url_env="NEWSMON_TEST_SLACK_URL")})
    yield built, server
    close_notifiers(built)
    server.stop()


# --- storage query ------------------------------------------------------------------------


def test_load_development_view_joins_story_article_and_sources(db):
    with db.session() as session:
        development_id = add_development(session, sources=("Gazette", "Herald"))
        view = load_development_view(session, development_id)
    assert (view.id, view.kind, view.story_title, view.source) == (
        development_id,
        "new_fact",
        "Riverton floods",
        "Gazette",
    )
    assert (view.article_url, view.article_title) == ("https://gazette.example/0", "Gazette on the floods")
    assert (view.closest_text, view.closest_similarity, view.details) == (
        "The council met.",
        0.31,
        {"figure": "1,200"},
    )
    assert view.published_at == T0 and view.detected_at == T0 + timedelta(minutes=1)
    assert [(ref.source, ref.url) for ref in view.sources] == [
        ("Gazette", "https://gazette.example/0"),
        ("Herald", "https://herald.example/1"),
    ]
    with db.session() as session, pytest.raises(LookupError, match="no development with id 999999"):
        load_development_view(session, 999999)


# --- enqueue ------------------------------------------------------------------------------


def test_enqueue_twice_stores_each_alert_once(db, tmp_path):
    ruleset = rules(
        tmp_path,
        "rules:\n  - {name: all, channels: [console, jsonl]}\n  - {name: floods, channels: [jsonl], keywords: [flood]}\n",
        {"console", "jsonl"},
    )
    with db.session() as session:
        view = load_development_view(session, add_development(session))
        assert enqueue(session, ruleset, view, now=T0) == 3
    with db.session() as session:
        assert enqueue(session, ruleset, view, now=T0) == 0
    alerts = stored(db)
    assert [(a.rule, a.channel, a.status, a.attempts) for a in alerts] == [
        ("all", "console", PENDING, 0),
        ("all", "jsonl", PENDING, 0),
        ("floods", "jsonl", PENDING, 0),
    ]
    assert all(a.next_attempt_at == T0 and a.created_at == T0 for a in alerts)


def test_enqueue_without_a_match_adds_nothing(db, tmp_path):
    ruleset = rules(tmp_path, "name: dates\nchannels: [console]\nkinds: [new_date]\n", {"console"})
    with db.session() as session:
        view = load_development_view(session, add_development(session))
        assert enqueue(session, ruleset, view) == 0
    assert stored(db) == []


def test_enqueue_belongs_to_the_callers_transaction(db, tmp_path):
    ruleset = rules(tmp_path, "name: all\nchannels: [console]\n", {"console"})
    with pytest.raises(RuntimeError), db.session() as session:
        view = load_development_view(session, add_development(session))
        assert enqueue(session, ruleset, view) == 1
        raise RuntimeError("the ingest fails after enqueuing")
    assert stored(db) == []  # rolled back with the development


# --- deliver ------------------------------------------------------------------------------


def test_deliver_sends_once_and_never_again(db, tmp_path):
    ruleset = rules(tmp_path, "name: all\nchannels: [jsonl]\n", {"jsonl"})
    view = enqueue_one(db, ruleset)
    out = tmp_path / "out" / "alerts.jsonl"
    notifiers = build_notifiers({"jsonl": ChannelConfig(kind="jsonl", path=str(out))})

    report = deliver_due(db, notifiers, now=T0, worker="w1", policy=POLICY)
    assert (report.sent, report.failed, report.dead, report.waiting) == (1, 0, 0, {})
    [alert] = stored(db)
    assert (alert.status, alert.attempts, alert.sent_at, alert.last_error) == (SENT, 1, T0, None)
    assert (alert.lease_owner, alert.lease_expires_at) == (None, None)

    for later in (T0, T0 + timedelta(days=1)):
        assert deliver_due(db, notifiers, now=later, worker="w2", policy=POLICY).outcomes == []
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and f'"alert_id": {alert.id}' in lines[0] and f'"id": {view.id}' in lines[0]


def test_outage_keeps_the_alert_and_delivers_it_when_the_server_is_back(db, tmp_path, slack_channel):
    notifiers, server = slack_channel
    enqueue_one(db, rules(tmp_path, "name: all\nchannels: [slack]\n", {"slack"}))

    # The server is down: connection refused, twice, with growing waits.
    report = deliver_due(db, notifiers, now=T0, policy=POLICY)
    assert (report.sent, report.failed) == (0, 1)
    [alert] = stored(db)
    assert (alert.status, alert.attempts, alert.next_attempt_at) == (FAILED, 1, T0 + timedelta(seconds=60))
    assert alert.last_error.startswith("cannot reach Slack: ConnectError")
    assert SLACK_PATH not in alert.last_error

    assert deliver_due(db, notifiers, now=T0 + timedelta(seconds=59), policy=POLICY).outcomes == []  # not due
    deliver_due(db, notifiers, now=T0 + timedelta(seconds=60), policy=POLICY)
    [alert] = stored(db)
    assert (alert.status, alert.attempts, alert.next_attempt_at) == (FAILED, 2, T0 + timedelta(seconds=180))

    server.start()
    report = deliver_due(db, notifiers, now=T0 + timedelta(seconds=180), policy=POLICY)
    assert report.sent == 1
    [alert] = stored(db)
    assert (alert.status, alert.attempts, alert.last_error) == (SENT, 3, None)
    assert len(server.bodies) == 1
    deliver_due(db, notifiers, now=T0 + timedelta(days=1), policy=POLICY)
    assert len(server.bodies) == 1


def test_permanent_error_goes_straight_to_dead(db, tmp_path, monkeypatch):
    server = SlackWebhookServer().start()
    try:
        monkeypatch.setenv("NEWSMON_TEST_SLACK_URL", server.url.replace("TOKEN", "TOKEN-revoked"))
        notifiers = build_notifiers(
            {"slack": ChannelConfig(kind="slack", webhook_url_env="NEWSMON_TEST_SLACK_URL")}
        )
        enqueue_one(db, rules(tmp_path, "name: all\nchannels: [slack]\n", {"slack"}))
        report = deliver_due(db, notifiers, now=T0, policy=POLICY)
        assert report.dead == 1
        [alert] = stored(db)
        assert (alert.status, alert.attempts, alert.last_error) == (DEAD, 1, "HTTP 404: no_service")
        assert deliver_due(db, notifiers, now=T0 + timedelta(days=1), policy=POLICY).outcomes == []
        close_notifiers(notifiers)
    finally:
        server.stop()


def test_retryable_errors_end_dead_after_max_attempts(db, tmp_path, slack_channel):
    notifiers, server = slack_channel
    server.start()
    server.replies.extend([(500, {}, "oops")] * POLICY.max_attempts)
    enqueue_one(db, rules(tmp_path, "name: all\nchannels: [slack]\n", {"slack"}))
    now = T0
    for attempt in range(1, POLICY.max_attempts + 1):
        [outcome] = deliver_due(db, notifiers, now=now, policy=POLICY).outcomes
        assert (outcome.status, outcome.error) == (
            FAILED if attempt < POLICY.max_attempts else DEAD,
            "HTTP 500: oops",
        )
        now += timedelta(days=1)
    [alert] = stored(db)
    assert (alert.status, alert.attempts) == (DEAD, POLICY.max_attempts)


def test_rate_limit_waits_as_long_as_the_service_asks(db, tmp_path, slack_channel):
    notifiers, server = slack_channel
    server.start()
    server.replies.append((429, {"Retry-After": "900"}, "rate_limited"))
    enqueue_one(db, rules(tmp_path, "name: all\nchannels: [slack]\n", {"slack"}))
    deliver_due(db, notifiers, now=T0, policy=POLICY)
    [alert] = stored(db)
    assert (alert.status, alert.next_attempt_at) == (FAILED, T0 + timedelta(seconds=900))


def test_a_channel_without_notifier_keeps_its_alerts_waiting(db, tmp_path):
    ruleset = rules(tmp_path, "name: all\nchannels: [console, pager]\n", {"console", "pager"})
    enqueue_one(db, ruleset)
    recorder = Recorder("console")
    report = deliver_due(db, {"console": recorder}, now=T0, policy=POLICY)
    assert (report.sent, report.waiting) == (1, {"pager": 1})
    pager = next(alert for alert in stored(db) if alert.channel == "pager")
    assert (pager.status, pager.attempts) == (PENDING, 0)
    assert (
        pager.last_error == "no notifier for channel 'pager': the channel is not configured; the alert waits"
    )

    pager_notifier = Recorder("pager")
    report = deliver_due(db, {"console": recorder, "pager": pager_notifier}, now=T0, policy=POLICY)
    assert (report.sent, report.waiting) == (1, {})
    assert len(pager_notifier.sent) == 1 and len(recorder.sent) == 1


def test_a_crash_between_two_alerts_loses_nothing_and_resends_nothing(db, tmp_path):
    ruleset = rules(tmp_path, "name: all\nchannels: [console]\n", {"console"})
    enqueue_one(db, ruleset)
    enqueue_one(db, ruleset)
    crashing = Recorder("console", crash_on=2)
    with pytest.raises(Crash):
        deliver_due(db, {"console": crashing}, now=T0, worker="dies", policy=POLICY)
    first, second = stored(db)
    assert first.status == SENT
    assert (second.status, second.lease_owner) == (PENDING, "dies")

    # While the dead worker's lease runs, nobody takes the alert; after it, another worker does.
    survivor = Recorder("console")
    assert (
        deliver_due(
            db, {"console": survivor}, now=T0 + timedelta(seconds=299), worker="b", policy=POLICY
        ).outcomes
        == []
    )
    report = deliver_due(
        db, {"console": survivor}, now=T0 + timedelta(seconds=300), worker="b", policy=POLICY
    )
    assert [outcome.alert_id for outcome in report.outcomes] == [second.id]
    assert [message.alert_id for message in crashing.sent + survivor.sent] == [first.id, second.id]


def test_an_unexpected_exception_in_a_notifier_is_a_retryable_failure(db, tmp_path, caplog):
    enqueue_one(db, rules(tmp_path, "name: all\nchannels: [console]\n", {"console"}))
    broken = Recorder("console", fail_with=KeyError("https://hooks.example/secret"))
    report = deliver_due(db, {"console": broken}, now=T0, policy=POLICY)
    assert report.failed == 1
    [alert] = stored(db)
    assert alert.last_error == "unexpected KeyError in the notifier (see log)"
    assert "the notifier failed unexpectedly" in caplog.text


def test_notify_error_text_is_stored_as_the_notifier_wrote_it(db, tmp_path):
    enqueue_one(db, rules(tmp_path, "name: all\nchannels: [console]\n", {"console"}))
    failing = Recorder("console", fail_with=NotifyError("console", "x" * 5000))
    deliver_due(db, {"console": failing}, now=T0, policy=POLICY)
    [alert] = stored(db)
    assert alert.last_error == "x" * 1000  # kept short


def test_limit_takes_the_oldest_due_first(db, tmp_path):
    ruleset = rules(tmp_path, "name: all\nchannels: [console]\n", {"console"})
    for _ in range(3):
        enqueue_one(db, ruleset)
    recorder = Recorder("console")
    assert deliver_due(db, {"console": recorder}, now=T0, limit=2, policy=POLICY).sent == 2
    assert deliver_due(db, {"console": recorder}, now=T0, limit=2, policy=POLICY).sent == 1
    assert [m.alert_id for m in recorder.sent] == [alert.id for alert in stored(db)]


def test_draining_delivers_every_due_alert_batch_by_batch_and_stops_at_failures(db, tmp_path):
    ruleset = rules(tmp_path, "name: all\nchannels: [console]\n", {"console"})
    for _ in range(5):
        enqueue_one(db, ruleset)
    recorder = Recorder("console")
    assert deliver_due(db, {"console": recorder}, now=T0, limit=2, policy=POLICY, drain=True).sent == 5
    assert [m.alert_id for m in recorder.sent] == [alert.id for alert in stored(db)]  # each once, oldest first
    for _ in range(3):
        enqueue_one(db, ruleset)
    failing = Recorder("console", fail_with=NotifyError("console", "down"))
    report = deliver_due(db, {"console": failing}, now=T0, limit=2, policy=POLICY, drain=True)
    assert (report.sent, report.failed) == (0, 3)  # each tried once: not due again until its retry time

    for _ in range(5):
        enqueue_one(db, ruleset)
    stopping = deliver_due(db, {"console": recorder}, now=T0, limit=2, policy=POLICY, drain=True,
                           should_stop=lambda: True)  # the daemon stops: after the batch in hand
    assert stopping.sent == 2


def test_rows_locked_by_another_worker_are_skipped(db, tmp_path):
    if db.dialect != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serves a single worker")
    enqueue_one(db, rules(tmp_path, "name: all\nchannels: [console]\n", {"console"}))
    recorder = Recorder("console")
    with db.session() as other:
        other.scalars(select(Alert).with_for_update()).all()  # another worker is mid-claim
        assert deliver_due(db, {"console": recorder}, now=T0, policy=POLICY).outcomes == []
    assert deliver_due(db, {"console": recorder}, now=T0, policy=POLICY).sent == 1


def test_concurrent_workers_send_each_alert_exactly_once(db, tmp_path):
    if db.dialect != "postgresql":
        pytest.skip("several workers need PostgreSQL")
    ruleset = rules(tmp_path, "name: all\nchannels: [console]\n", {"console"})
    for _ in range(30):
        enqueue_one(db, ruleset)
    recorder = Recorder("console")
    start = threading.Barrier(4)

    def work(name: str) -> None:
        start.wait()
        while deliver_due(db, {"console": recorder}, now=T0, worker=name, limit=3, policy=POLICY).outcomes:
            pass

    workers = [threading.Thread(target=work, args=(f"w{index}",)) for index in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sent_ids = [message.alert_id for message in recorder.sent]
    assert sorted(sent_ids) == [alert.id for alert in stored(db)]  # each once, none missing
    assert {alert.status for alert in stored(db)} == {SENT}


# --- inspection and repair ----------------------------------------------------------------


def test_list_alerts_filters_and_fields(db, tmp_path):
    ruleset = rules(tmp_path, "name: all\nchannels: [console, pager]\n", {"console", "pager"})
    view = enqueue_one(db, ruleset)
    deliver_due(db, {"console": Recorder("console")}, now=T0 + timedelta(minutes=5), policy=POLICY)

    with db.session() as session:
        everything = list_alerts(session)
        sent = list_alerts(session, status=SENT)
        recent = list_alerts(session, since=T0 + timedelta(seconds=1))
        with pytest.raises(ValueError, match="unknown alert status 'done'"):
            list_alerts(session, status="done")
    assert {a["channel"] for a in everything} == {"console", "pager"}
    assert recent == []
    [row] = sent
    assert row == {
        "id": row["id"],
        "rule": "all",
        "channel": "console",
        "status": "sent",
        "attempts": 1,
        "last_error": None,
        "created_at": T0.isoformat(),
        "sent_at": (T0 + timedelta(minutes=5)).isoformat(),
        "next_attempt_at": None,
        "development_id": view.id,
        "feed_event_id": None,
        "story_id": view.story_id,
        "kind": "new_fact",
        "text": "The council approved the flood budget.",
    }


def test_requeue_gives_dead_alerts_a_fresh_start(db, tmp_path):
    enqueue_one(db, rules(tmp_path, "name: all\nchannels: [console]\n", {"console"}))
    failing = Recorder("console", fail_with=NotifyError("console", "gone", permanent=True))
    deliver_due(db, {"console": failing}, now=T0, policy=POLICY)
    [alert] = stored(db)
    assert alert.status == DEAD
    with db.session() as session:
        assert requeue(session, [alert.id], now=T0 + timedelta(hours=1)) == 1
    [alert] = stored(db)
    assert (alert.status, alert.attempts, alert.next_attempt_at) == (PENDING, 0, T0 + timedelta(hours=1))
    assert (
        deliver_due(db, {"console": Recorder("console")}, now=T0 + timedelta(hours=1), policy=POLICY).sent
        == 1
    )
    with db.session() as session:
        assert requeue(session, [alert.id]) == 0  # a sent alert stays sent


def test_backoff_doubles_up_to_a_ceiling_and_jitter_only_shortens():
    policy = RetryPolicy(base_delay=60, max_delay=600, jitter=0.25)
    assert [policy.delay(attempt, rng=lambda: 0.0) for attempt in range(1, 6)] == [60, 120, 240, 480, 600]
    assert policy.delay(1, rng=lambda: 1.0) == 45.0
    assert all(45 <= policy.delay(1) <= 60 for _ in range(100))
