"""When a feed is polled next, and when its health changes: tables of cases, no clock, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.model import Kind
from monitor.schedule import MAX_RETRY_AFTER, Policy, backoff, entry_gap, health_change, interval, next_poll

T0 = datetime(2025, 2, 22, 12, 0, tzinfo=UTC)
POLICY = Policy(default_interval=900, min_interval=300, max_interval=14400, max_backoff=21600,
                down_after=21600, jitter=0.1)
MIDDLE = lambda: 0.5  # noqa: E731 — no jitter: 1 + 0.1 * (2 * 0.5 - 1) == 1


def hours_ago(*hours: float) -> list[datetime]:
    return [T0 - timedelta(hours=h) for h in hours]


@pytest.mark.parametrize(("published", "expected"), [
    ([], None),
    (hours_ago(1, 2), None),                            # two dated entries say nothing yet
    (hours_ago(0, 1, 2, 3), 3600),
    (hours_ago(0, 1, 2, 30), 3600),                     # the median: one old straggler does not count
    ([*hours_ago(0, 0.5, 1), None, None], 1800),        # undated entries are left out
    (hours_ago(*[0] * 20), None),                       # every entry stamped alike: no signal
    (hours_ago(*range(0, 400, 2)), 7200),               # only the newest GAP_SAMPLE count
])
def test_entry_gap(published, expected):
    assert entry_gap(published) == expected


@pytest.mark.parametrize(("own", "gap", "ttl", "expected"), [
    (None, None, None, 900),        # nothing known: poll_interval
    (None, 60, None, 300),          # a busy wire: min_interval
    (None, 3600, None, 1800),       # twice per typical gap
    (None, 7 * 86400, None, 14400), # a weekly blog: max_interval
    (None, 60, 3600, 3600),         # the publisher's <ttl> is a floor
    (120, 7 * 86400, None, 120),    # the feed's own interval is taken as given
    (120, None, 600, 600),          # … but not under the publisher's floor
])
def test_interval(own, gap, ttl, expected):
    assert interval(POLICY, own_interval=own, entry_gap=gap, ttl=ttl) == expected


@pytest.mark.parametrize(("failures", "normal", "expected"), [
    (0, 900, 900),
    (1, 900, 900),
    (2, 900, 1800),
    (3, 900, 3600),
    (5, 900, 14400),
    (6, 900, 21600),                # the cap
    (60, 900, 21600),               # no overflow, still the cap
    (3, 86400, 86400),              # a feed normally polled daily never waits less when failing
])
def test_backoff_doubles_up_to_the_cap(failures, normal, expected):
    assert backoff(POLICY, failures, normal) == expected


def test_next_poll_jitter_spreads_but_never_undercuts_a_floor():
    low = next_poll(POLICY, T0, normal=1000, rng=lambda: 0.0)
    high = next_poll(POLICY, T0, normal=1000, rng=lambda: 0.999999)
    assert low == T0 + timedelta(seconds=900)
    assert abs((high - T0).total_seconds() - 1100) < 0.01
    assert next_poll(POLICY, T0, normal=1000, ttl=1000, rng=lambda: 0.0) == T0 + timedelta(seconds=1000)


def test_retry_after_is_honoured_when_longer_and_capped():
    assert next_poll(POLICY, T0, normal=900, failures=1, retry_after=7200, rng=MIDDLE) == T0 + timedelta(hours=2)
    assert next_poll(POLICY, T0, normal=900, failures=1, retry_after=30, rng=MIDDLE) == T0 + timedelta(seconds=900)
    far = next_poll(POLICY, T0, normal=900, failures=1, retry_after=365 * 86400, rng=MIDDLE)
    assert far == T0 + timedelta(seconds=MAX_RETRY_AFTER)


@pytest.mark.parametrize(("failed", "gone", "since_hours", "alerted", "expected"), [
    (True, False, None, False, None),                # the first failure
    (True, False, 5, False, None),                   # down, but not long enough
    (True, False, 6, False, Kind.FEED_DOWN),         # down for feed_down_alert_after
    (True, False, 30, True, None),                   # already alerted: once per outage
    (True, True, None, False, Kind.FEED_DOWN),       # 410: it will not come back by itself
    (False, False, None, True, Kind.FEED_RECOVERED), # the first success after a down alert
    (False, False, None, False, None),               # a short outage recovers silently
])
def test_health_change(failed, gone, since_hours, alerted, expected):
    since = None if since_hours is None else T0 - timedelta(hours=since_hours)
    assert health_change(POLICY, T0, failed=failed, gone=gone, failing_since=since,
                         down_alerted=alerted) == expected
