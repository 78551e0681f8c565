"""How an alert reads as plain text: the console block, the e-mail body and subject.

One function per piece, so that the Slack notifier can reuse the pieces in its own layout.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from monitor.model import DevelopmentView, FeedEventView, SourceRef
from notifiers.base import AlertMessage

WIDTH = 100  # wrap long sentences for terminals and plain-text mail readers
LABEL_WIDTH = 12

KIND_LABELS = {
    "new_story": "New story",
    "new_fact": "New fact",
    "changed_figure": "Changed figure",
    "new_date": "New date",
    "revision": "Revision",
    "feed_down": "Feed down",
    "feed_recovered": "Feed recovered",
}


def one_line(text: str) -> str:
    """Collapse whitespace (titles from feeds carry newlines and tabs)."""
    return " ".join(text.split())


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def subject(view: DevelopmentView | FeedEventView) -> str:
    """The e-mail subject: `[newsmon] <kind>: <story title>` (or the feed's title or URL)."""
    if isinstance(view, FeedEventView):
        return f"[newsmon] {view.kind}: {one_line(view.feed_title or view.feed_url)}"
    return f"[newsmon] {view.kind}: {one_line(view.story_title)}"


def published(view: DevelopmentView) -> str:
    return format_time(view.published_at)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def why_new(view: DevelopmentView) -> str:
    """Why newsmon thinks this is new: the nearest thing the story already said, or nothing."""
    if view.closest_text is None:
        return "no earlier report" + (" (first report of this story)" if view.kind == "new_story" else "")
    similarity = view.closest_similarity or 0.0
    return f'closest earlier report ({similarity:.2f} similar): "{one_line(view.closest_text)}"'


def corroborating(view: DevelopmentView) -> list[SourceRef]:
    """The other outlets that reported this development; empty unless there are several.

    `view.sources` holds every report, the first one included; one outlet reporting twice
    (an updated article) is one outlet.
    """
    others: dict[str, SourceRef] = {}
    for ref in view.sources:
        if ref.source != view.source and ref.source not in others:
            others[ref.source] = ref
    return list(others.values())


def render_text(message: AlertMessage) -> str:
    """The readable block for one alert (console, e-mail body, Slack fallback)."""
    if message.feed_event is not None:
        return render_feed_event(message)
    view = message.development
    assert view is not None
    source = view.source + (f" — {view.article_url}" if view.article_url else "")
    rows = [
        ("New", one_line(view.text)),
        ("Source", source),
        ("Published", f"{published(view)}   score {view.score:.2f}"),
        ("Why new", why_new(view)),
    ]
    others = corroborating(view)
    if others:
        rows.append(("Also from", ", ".join(_source_with_link(ref) for ref in others)))
    rows.append(("Alert", f"#{message.alert_id}, rule {message.rule!r} → {message.channel}"))

    return _block(f"[{kind_label(view.kind)}] {one_line(view.story_title)}  (story {view.story_id})", rows)


def render_feed_event(message: AlertMessage) -> str:
    """The readable block for a feed-health alert."""
    event = message.feed_event
    assert event is not None
    rows = [("Feed", f"#{event.feed_id} {event.feed_url}")]
    if event.kind == "feed_down":
        rows.append(("Error", f"{event.error} ({event.failures} failed poll(s) in a row)"))
        if event.failing_since:
            rows.append(("Since", format_time(event.failing_since)))
    else:
        rows.append(("Was", f"{event.error} ({event.failures} failed poll(s))"))
    rows.append(("Detected", format_time(event.detected_at)))
    rows.append(("Alert", f"#{message.alert_id}, rule {message.rule!r} → {message.channel}"))
    return _block(f"[{kind_label(event.kind)}] {one_line(event.feed_title or event.feed_url)}", rows)


def _block(headline: str, rows: list[tuple[str, str]]) -> str:
    lines = [headline]
    for label, value in rows:
        lines.append(
            textwrap.fill(
                value,
                width=WIDTH,
                initial_indent=f"  {label + ':':<{LABEL_WIDTH}}",
                subsequent_indent=" " * (LABEL_WIDTH + 2),
                break_long_words=False,  # never split a URL
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines) + "\n"


def _source_with_link(ref: SourceRef) -> str:
    return f"{ref.source} ({ref.url})" if ref.url else ref.source
