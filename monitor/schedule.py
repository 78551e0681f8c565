"""When to poll a feed next, and whether its health changed: pure functions, no clock, no I/O.

    normal = interval(policy, own_interval=…, entry_gap=…, ttl=…)      # a healthy feed's wait
    when = next_poll(policy, now, normal=normal, failures=…, retry_after=…, ttl=…)
    event = health_change(policy, now, failed=…, gone=…, failing_since=…, down_alerted=…)

The pipeline reads the feed's row and the fetch result, asks these, and stores the answers
(`polling._record_poll`); the daemon only reads `feeds.next_poll_at`.

- **Adaptive.** A feed without its own `interval` is polled about twice per typical gap
  between its entries (the median gap of its newest dated entries), within `min_interval`
  and `max_interval`: a wire that publishes every few minutes is polled every `min_interval`,
  a blog that posts weekly every `max_interval`. Until a feed has shown a few dated entries
  it is polled every `poll_interval`.
- **The publisher's floor.** `<ttl>`, `Cache-Control: max-age` and `Expires` (the fetcher's
  `ttl_seconds`) are never undercut, neither by adaptation nor by jitter.
- **Backoff.** A failing feed waits its normal interval after the first failure, then twice
  that, four times …, up to `max_backoff` (or the normal interval, if that is longer); it keeps
  trying at that pace and recovers by itself. A Retry-After (429, 503) is honoured when longer,
  up to a day.
- **Jitter.** Every wait is spread by ±`jitter` so that feeds added together do not stay in step.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.model import Kind

# Poll about twice per typical gap between entries: a new entry waits half a gap on average.
PUBLISH_SHARE = 0.5
# The newest this-many dated entries give the gap; fewer than MIN_DATED say nothing.
GAP_SAMPLE = 10
MIN_DATED = 3
# A Retry-After longer than this is a misconfigured server, not a wish to honour to the letter.
MAX_RETRY_AFTER = 86400.0


@dataclass(frozen=True)
class Policy:
    default_interval: float = 900.0
    min_interval: float = 300.0
    max_interval: float = 4 * 3600.0
    max_backoff: float = 6 * 3600.0
    down_after: float = 6 * 3600.0  # a feed failing this long raises feed_down
    jitter: float = 0.1

    @classmethod
    def from_settings(cls, settings) -> Policy:
        return cls(default_interval=settings.poll_interval, min_interval=settings.min_interval,
                   max_interval=settings.max_interval, max_backoff=settings.max_backoff,
                   down_after=settings.feed_down_alert_after)


def entry_gap(published: Iterable[datetime | None]) -> int | None:
    """Median seconds between the newest GAP_SAMPLE dated entries; None when too few are dated.

    Entries dated alike (a feed that stamps every entry with the build time) say nothing
    about how often it publishes: their zero gaps are left out.
    """
    dated = sorted({moment for moment in published if moment is not None}, reverse=True)[:GAP_SAMPLE]
    if len(dated) < MIN_DATED:
        return None
    gaps = [(newer - older).total_seconds() for newer, older in itertools.pairwise(dated)]
    return max(1, round(statistics.median(gaps)))


def interval(policy: Policy, *, own_interval: float | None = None, entry_gap: float | None = None,
             ttl: float | None = None) -> float:
    """Seconds between polls of a healthy feed."""
    if own_interval:
        wait = own_interval  # the user said so
    elif entry_gap:
        wait = min(policy.max_interval, max(policy.min_interval, entry_gap * PUBLISH_SHARE))
    else:
        wait = policy.default_interval
    return max(wait, ttl or 0)


def backoff(policy: Policy, failures: int, normal: float) -> float:
    """Seconds before the next try after `failures` failed polls in a row (1-based)."""
    if failures <= 0:
        return normal
    ceiling = max(policy.max_backoff, normal)
    return min(ceiling, normal * 2 ** min(failures - 1, 30))


def next_poll(policy: Policy, now: datetime, *, normal: float, failures: int = 0,
              retry_after: float | None = None, ttl: float | None = None,
              rng: Callable[[], float] = random.random) -> datetime:
    """When to poll next: the normal interval or the backoff, jittered, never under a floor."""
    wait = backoff(policy, failures, normal) * (1 + policy.jitter * (2 * rng() - 1))
    floor = max(ttl or 0, min(retry_after or 0, MAX_RETRY_AFTER))
    return now + timedelta(seconds=max(wait, floor, 1.0))


def health_change(policy: Policy, now: datetime, *, failed: bool, gone: bool = False,
                  failing_since: datetime | None = None, down_alerted: bool = False) -> str | None:
    """Kind.FEED_DOWN, Kind.FEED_RECOVERED or None, after a poll (the feed's state before it).

    Down: failing for `down_after` (counted from the first failure of the outage), or gone
    (410: it will not come back by itself). Recovered: the first success after a down alert.
    One outage raises at most one of each.
    """
    if not failed:
        return Kind.FEED_RECOVERED if down_alerted else None
    if down_alerted:
        return None
    since = failing_since or now
    if gone or (now - since).total_seconds() >= policy.down_after:
        return Kind.FEED_DOWN
    return None
