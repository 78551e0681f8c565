"""The outbox: alerts are stored with the development that caused them, delivered after commit.

    enqueue      inside the ingest transaction: one pending row per (rule, channel) match;
                 the unique key (rule, development, channel) makes a second enqueue a no-op.
    deliver_due  later, in its own transactions: claim due alerts under a lease, send each,
                 record the outcome of each in its own short transaction.

An alert's life: pending ──send ok──▶ sent
                    │  └──retryable error──▶ failed ──(backoff)──▶ tried again … ──▶ dead
                    └──permanent error────────────────────────────────────────────▶ dead

Guarantees. An alert recorded as sent is never claimed again, so a restart resends nothing
recorded as sent. A crash loses nothing: an alert claimed but not recorded keeps its row,
and once its lease expires another run (or worker) takes it. The one window — after the
notifier delivered and before `sent` is committed — makes delivery at-least-once, never
at-most-once; the alert id travels with every message so a receiver can drop repeats.

Several workers can share PostgreSQL: claiming uses `SELECT … FOR UPDATE SKIP LOCKED`, and
the lease (owner + expiry) stays on the row after the claim commits, so two workers never
hold the same alert at once and a dead worker's alerts are taken over when the lease ends.
SQLite serves one worker; the lease is written all the same.

Backoff is a small function (`RetryPolicy.delay`) rather than tenacity: tenacity's wait
strategies expect a live RetryCallState, while here the attempt count lives in the database
between runs; the formula is two lines.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from monitor.errors import NotifyError
from monitor.model import DevelopmentView, FeedEventView
from monitor.rules import RuleSet
from notifiers.base import AlertMessage, Notifier, RateLimited
from storage import driver
from storage.db import Database
from storage.models import Alert, Development, FeedEvent, utcnow
from storage.queries import feed_event_view, load_development_view

log = logging.getLogger(__name__)

PENDING, SENT, FAILED, DEAD = "pending", "sent", "failed", "dead"
STATUSES = (PENDING, SENT, FAILED, DEAD)
DUE = (PENDING, FAILED)  # the statuses deliver_due picks up
ERROR_LIMIT = 1000  # characters of last_error kept: enough for a server's reply, not for a page of HTML


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed alert again, and when to give up.

    With the defaults the waits are 1, 2, 4, … 256 minutes: ten attempts span about eight and a
    half hours, long enough to ride out a night's outage of a mail server or of Slack.
    """

    max_attempts: int = 10  # the alert is dead after this many failed attempts
    base_delay: float = 60.0  # seconds after the first failure; doubles with each failure
    max_delay: float = 6 * 3600.0
    jitter: float = 0.2  # retry up to this fraction earlier, so that alerts that failed together spread out
    lease: float = 300.0  # seconds a claimed alert belongs to its worker; longer than any notifier timeout

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the `attempt`-th failed attempt (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * (1.0 - self.jitter * rng())


@dataclass(frozen=True)
class Outcome:
    alert_id: int
    rule: str
    channel: str
    status: str  # sent | failed | dead
    error: str | None = None


@dataclass
class DeliveryReport:
    """What one deliver_due run did."""

    outcomes: list[Outcome] = field(default_factory=list)
    waiting: dict[str, int] = field(default_factory=dict)  # channel without a notifier → alerts held

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def sent(self) -> int:
        return self.count(SENT)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    @property
    def dead(self) -> int:
        return self.count(DEAD)


def default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- enqueue: inside the caller's transaction --------------------------------------------


def enqueue(
    session: Session, ruleset: RuleSet, view: DevelopmentView | FeedEventView, now: datetime | None = None
) -> int:
    """Add a pending alert for every (rule, channel) the development (or feed event) matches;
    returns how many are new.

    Runs in the caller's transaction (the one that stores the development or the feed's new
    state), so the alerts exist exactly when their subject does. Enqueuing again is harmless:
    rows that exist are left alone — including ones already sent.
    """
    return enqueue_many(session, ruleset, [view], now)


def enqueue_many(
    session: Session, ruleset: RuleSet, views: Iterable[DevelopmentView | FeedEventView],
    now: datetime | None = None,
) -> int:
    """`enqueue` for several subjects at once (an article's developments): one statement per
    kind of subject, not one per development."""
    now = now or utcnow()
    connection = session.connection()
    stamp = driver.bound(Alert.__table__.c.created_at, connection.dialect, now)
    rows: dict[str, list[tuple]] = {"development_id": [], "feed_event_id": []}
    for view in views:
        subject = "feed_event_id" if isinstance(view, FeedEventView) else "development_id"
        rows[subject] += [(rule, channel, view.id, PENDING, 0, stamp, stamp) for rule, channel in ruleset.match(view)]
    added = 0
    for subject, subject_rows in rows.items():
        # RETURNING lists only the rows inserted; rowcount is not reliable for this on every driver.
        added += len(driver.values(connection, _INSERT_HEAD.format(subject=subject), "(?, ?, ?, ?, ?, ?, ?)",
                                   _INSERT_TAIL.format(subject=subject), subject_rows))
    return added


# One statement for an article's alerts, through the driver (storage/driver.py): SQLite and
# PostgreSQL both take this upsert, and an alert that exists is left alone.
_INSERT_HEAD = (f"INSERT INTO {Alert.__tablename__} (rule, channel, {{subject}}, status, attempts, "
                f"next_attempt_at, created_at) VALUES ")
_INSERT_TAIL = " ON CONFLICT (rule, {subject}, channel) DO NOTHING RETURNING id"


# --- deliver: claim, send, record ---------------------------------------------------------


def deliver_due(
    db: Database,
    notifiers: Mapping[str, Notifier],
    now: datetime | None = None,
    worker: str | None = None,
    limit: int = 100,
    policy: RetryPolicy = RetryPolicy(),  # frozen: one shared default is safe
    drain: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Deliver up to `limit` due alerts; each outcome is committed as soon as it is known.
    With `drain`, batch after batch of `limit` until none is left due (`run --once`: a run
    from cron must not leave the alerts of a busy poll for the next run); an alert that fails
    is not due again before its retry time, so draining ends. `should_stop` is asked between
    batches (the daemon's shutdown).

    `now` fixes the clock for the whole run (tests drive time with it); by default the real
    clock is read at each step. Alerts of channels with no notifier stay as they are, with
    a `last_error` that says why, and are counted in `report.waiting`.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    worker = worker or default_worker()
    channels = sorted(notifiers)
    report = DeliveryReport(waiting=_hold_unconfigured(db, channels, clock()))
    while True:
        claimed = _claim(db, channels, clock(), worker, limit, policy)
        for alert_id in claimed:
            outcome = _deliver_one(db, notifiers, alert_id, clock, worker, policy)
            if outcome is not None:
                report.outcomes.append(outcome)
        if not drain or len(claimed) < limit or (should_stop is not None and should_stop()):
            return report


def _claim(
    db: Database, channels: list[str], now: datetime, worker: str, limit: int, policy: RetryPolicy
) -> list[int]:
    """Take a lease on up to `limit` due alerts and return their ids, oldest due first."""
    if not channels:
        return []
    with db.session() as session:
        due = (
            select(Alert.id)
            .where(
                Alert.status.in_(DUE),
                Alert.next_attempt_at <= now,
                Alert.channel.in_(channels),
                or_(Alert.lease_expires_at.is_(None), Alert.lease_expires_at <= now),
            )
            .order_by(Alert.next_attempt_at, Alert.id)
            .limit(limit)
        )
        if db.dialect == "postgresql":
            # Rows another worker is claiming right now are skipped, not waited for.
            due = due.with_for_update(skip_locked=True)
        ids = list(session.scalars(due))
        if ids:
            session.execute(
                update(Alert)
                .where(Alert.id.in_(ids))
                .values(lease_owner=worker, lease_expires_at=now + timedelta(seconds=policy.lease))
            )
    return ids


def _deliver_one(
    db: Database,
    notifiers: Mapping[str, Notifier],
    alert_id: int,
    clock: Callable[[], datetime],
    worker: str,
    policy: RetryPolicy,
) -> Outcome | None:
    with db.session() as session:
        # Renew the lease for this alert alone: the batch's lease may have run down while
        # earlier alerts were slow. If it is no longer ours (taken over, or done), leave it.
        renewed = session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.lease_owner == worker, Alert.status.in_(DUE))
            .values(lease_expires_at=clock() + timedelta(seconds=policy.lease))
        ).rowcount
        if not renewed:
            return None
        alert = session.get_one(Alert, alert_id)
        message = AlertMessage(
            rule=alert.rule,
            channel=alert.channel,
            alert_id=alert.id,
            development=None if alert.development_id is None else load_development_view(
                session, alert.development_id),
            feed_event=None if alert.feed_event_id is None else feed_event_view(
                session.get_one(FeedEvent, alert.feed_event_id)),
        )
        attempts = alert.attempts + 1

    # No transaction is open while the notifier talks to the network.
    try:
        notifiers[message.channel].send(message)
    except NotifyError as error:
        return _record_failure(db, message, attempts, error, clock(), policy)
    except Exception as error:  # a bug in a notifier must not stop the other alerts
        log.exception("channel %s: the notifier failed unexpectedly on alert %s", message.channel, alert_id)
        # The exception's text is not stored: it is not ours, and could hold a secret.
        unexpected = NotifyError(
            message.channel, f"unexpected {type(error).__name__} in the notifier (see log)"
        )
        return _record_failure(db, message, attempts, unexpected, clock(), policy)

    with db.session() as session:
        session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.status != SENT)
            .values(
                status=SENT,
                sent_at=clock(),
                attempts=attempts,
                last_error=None,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    log.info("alert %s sent: rule %s → %s", alert_id, message.rule, message.channel)
    return Outcome(alert_id, message.rule, message.channel, SENT)


def _record_failure(
    db: Database,
    message: AlertMessage,
    attempts: int,
    error: NotifyError,
    now: datetime,
    policy: RetryPolicy,
) -> Outcome:
    text = error.message[:ERROR_LIMIT]  # notifiers redact their secrets from their messages
    dead = error.permanent or attempts >= policy.max_attempts
    wait = policy.delay(attempts)
    if isinstance(error, RateLimited) and error.retry_after is not None:
        wait = max(wait, error.retry_after)  # the service said when; sooner would only be refused again
    with db.session() as session:
        session.execute(
            update(Alert)
            .where(Alert.id == message.alert_id, Alert.status != SENT)
            .values(
                status=DEAD if dead else FAILED,
                attempts=attempts,
                last_error=text,
                next_attempt_at=now + timedelta(seconds=wait),
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    if dead:
        why = "permanent error" if error.permanent else f"{attempts} attempts"
        log.warning("alert %s dead (%s) on %s: %s", message.alert_id, why, message.channel, text)
    else:
        log.info(
            "alert %s failed (attempt %s) on %s, retry in %.0fs: %s",
            *(message.alert_id, attempts, message.channel, wait, text),
        )
    return Outcome(message.alert_id, message.rule, message.channel, DEAD if dead else FAILED, text)


def _hold_unconfigured(db: Database, channels: list[str], now: datetime) -> dict[str, int]:
    """Note on each due alert whose channel has no notifier why it waits; channel → count.

    Such alerts are not attempts: their status and attempts stay, so that they go out as soon
    as the channel is configured again (a channel removed from the config while alerts for it
    were still queued, or a config that failed to build a notifier).
    """
    waiting: dict[str, int] = {}
    with db.session() as session:
        rows = session.execute(
            select(Alert.channel, func.count())
            .where(Alert.status.in_(DUE), Alert.channel.not_in(channels))
            .group_by(Alert.channel)
        ).all()
        for channel, count in rows:
            waiting[channel] = count
            reason = f"no notifier for channel {channel!r}: the channel is not configured; the alert waits"
            session.execute(
                update(Alert)
                .where(
                    Alert.status.in_(DUE),
                    Alert.channel == channel,
                    or_(Alert.last_error.is_(None), Alert.last_error != reason),
                    # A worker configured differently may hold it right now; leave its row alone.
                    or_(Alert.lease_expires_at.is_(None), Alert.lease_expires_at <= now),
                )
                .values(last_error=reason)
            )
    for channel, count in waiting.items():
        log.warning("%d alert(s) wait for channel %r, which has no notifier configured", count, channel)
    return waiting


# --- inspection and repair, for the CLI ---------------------------------------------------


def list_alerts(
    session: Session, status: str | None = None, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Alerts newest first, as JSON-ready dicts (fields: docs/json.md, "Alert")."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown alert status {status!r}; one of {', '.join(STATUSES)}")
    query = (
        select(Alert, Development.story_id, Development.kind, Development.text, FeedEvent)
        .outerjoin(Development, Development.id == Alert.development_id)
        .outerjoin(FeedEvent, FeedEvent.id == Alert.feed_event_id)
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(Alert.status == status)
    if since is not None:
        query = query.where(Alert.created_at >= since)
    return [
        {
            "id": alert.id,
            "rule": alert.rule,
            "channel": alert.channel,
            "status": alert.status,
            "attempts": alert.attempts,
            "last_error": alert.last_error,
            "created_at": alert.created_at.isoformat(),
            "sent_at": alert.sent_at.isoformat() if alert.sent_at else None,
            "next_attempt_at": alert.next_attempt_at.isoformat() if alert.status in DUE else None,
            "development_id": alert.development_id,
            "feed_event_id": alert.feed_event_id,
            "story_id": story_id,
            "kind": kind if event is None else event.kind,
            "text": text if event is None else feed_event_view(event).text,
        }
        for alert, story_id, kind, text, event in session.execute(query)
    ]


def requeue(session: Session, alert_ids: list[int], now: datetime | None = None) -> int:
    """Give failed or dead alerts a fresh start (attempts reset, due now); sent ones are left alone."""
    result = session.execute(
        update(Alert)
        .where(Alert.id.in_(alert_ids), Alert.status.in_((FAILED, DEAD)))
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=now or utcnow(),
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return result.rowcount
