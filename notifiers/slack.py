"""Post each alert to a Slack channel through an incoming webhook."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field, model_validator

from monitor import USER_AGENT
from monitor.errors import ConfigError, NotifyError
from notifiers.base import (
    AlertMessage,
    Options,
    RateLimited,
    one_of,
    parse_options,
    read_secret,
    redact,
    refuse_inline_secret,
)
from notifiers.text import corroborating, kind_label, one_line, published, why_new

# Slack's limits (api.slack.com/reference/block-kit/blocks): longer texts are refused with 400.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
TEXT_LIMIT = 2500  # clip before escaping, leaving room for `&amp;` and the label
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class _HideWebhookUrls(logging.Filter):
    """httpx logs every request's full URL at INFO, and a webhook URL is a credential.

    One filter on the `httpx` logger for the whole process (filters cannot be scoped to a
    client); each SlackNotifier registers its URL when it is built.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            hidden = redact(message, self.secrets)
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True


_HIDE_URLS = _HideWebhookUrls()
logging.getLogger("httpx").addFilter(_HIDE_URLS)


class SlackOptions(Options):
    webhook_url_env: str | None = None
    webhook_url_file: Path | None = None
    timeout: float = Field(default=10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_url(cls, data: Any) -> Any:
        return refuse_inline_secret(data, "webhook_url", "webhook URL", "URL")

    @model_validator(mode="after")
    def _one_source(self) -> SlackOptions:
        one_of(self, "webhook_url_env", "webhook_url_file")
        return self


class SlackNotifier:
    """Posts each alert to a Slack incoming webhook, as Block Kit blocks with a plain fallback.

    Options: `webhook_url_env` (the name of an environment variable holding the webhook URL)
    or `webhook_url_file` (a file holding it); `timeout` (seconds, default 10).

    Outcomes: 2xx is delivered; 429 (with Retry-After) and 5xx, timeouts and connection
    errors are retried; any other 4xx (404 no_service, 403 invalid_token, 410
    channel_is_archived) is permanent. The URL is the credential: it appears nowhere.
    """

    kind = "slack"

    def __init__(self, name: str, options: dict[str, Any], client: httpx.Client | None = None) -> None:
        self.name = name
        self.options = parse_options(SlackOptions, name, options)
        what = "webhook_url"
        self._url = read_secret(name, what, self.options.webhook_url_env, self.options.webhook_url_file)
        _check_url(name, self._url.get_secret_value(), self.options)
        _HIDE_URLS.secrets.add(self._url.get_secret_value())
        self._client = client or httpx.Client(
            timeout=self.options.timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )

    def payload(self, message: AlertMessage) -> dict[str, Any]:
        if message.feed_event is not None:
            event = message.feed_event
            headline = f"{kind_label(event.kind)}: {one_line(event.feed_title or event.feed_url)}"
            blocks = [
                {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, HEADER_LIMIT)}},
                _section(_escape(_clip(event.text, TEXT_LIMIT))),
                _context(f"{_link(event.feed_url, event.feed_url)} · feed {event.feed_id}"),
                _context(f"alert #{message.alert_id} · rule {_escape(message.rule)}"),
            ]
            return {"text": _clip(event.text, SECTION_LIMIT), "blocks": blocks}
        view = message.development
        assert view is not None
        headline = f"{kind_label(view.kind)}: {one_line(view.story_title)}"
        where = _link(view.article_url, view.source) if view.article_url else _escape(view.source)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, HEADER_LIMIT)}},
            _section(_escape(_clip(one_line(view.text), TEXT_LIMIT))),
            _section(f"*Why new:* {_escape(_clip(why_new(view), TEXT_LIMIT))}"),
            _context(f"{where} · {published(view)} · score {view.score:.2f} · story {view.story_id}"),
        ]
        others = corroborating(view)
        if others:
            names = ", ".join(
                _link(ref.url, ref.source) if ref.url else _escape(ref.source) for ref in others
            )
            blocks.append(_context(f"Also reported by {names}"))
        blocks.append(_context(f"alert #{message.alert_id} · rule {_escape(message.rule)}"))
        # `text` is what notifications and screen readers show; blocks are what the channel shows.
        return {"text": _clip(f"{headline} — {one_line(view.text)}", SECTION_LIMIT), "blocks": blocks}

    def send(self, message: AlertMessage) -> None:
        try:
            response = self._client.post(self._url.get_secret_value(), json=self.payload(message))
        except httpx.TimeoutException:
            raise self._error(f"no answer within {self.options.timeout:g}s") from None
        except httpx.HTTPError as error:  # connection refused, DNS, TLS, a dropped connection
            raise self._error(f"cannot reach Slack: {type(error).__name__}: {error}") from None
        if response.is_success:
            return
        body = one_line(response.text)[:200] or "(no body)"
        status = response.status_code
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise RateLimited(self.name, self._redact(f"rate limited (HTTP 429): {body}"), retry_after)
        if status >= 500:
            raise self._error(f"HTTP {status}: {body}")
        if response.is_redirect:
            raise self._error(
                f"unexpected redirect (HTTP {status}); is the webhook URL right?", permanent=True
            )
        raise self._error(f"HTTP {status}: {body}", permanent=True)

    def _redact(self, text: str) -> str:
        url = self._url.get_secret_value()
        return redact(text, [url, urlsplit(url).path])

    def _error(self, text: str, permanent: bool = False) -> NotifyError:
        return NotifyError(self.name, self._redact(text), permanent=permanent)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"<SlackNotifier {self.name!r}>"


def _check_url(channel: str, url: str, options: SlackOptions) -> None:
    """An https URL; plain http only to this machine (a local relay or a test server)."""
    field = f"channels.{channel}." + ("webhook_url_env" if options.webhook_url_env else "webhook_url_file")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    # Never echo the value: a mistyped setting may still hold most of a working secret.
    raise ConfigError(None, field, "the webhook URL must be an https:// URL")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _escape(text: str) -> str:
    """Slack's mrkdwn needs only these three escaped (api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None, label: str) -> str:
    safe_url = (url or "").replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe_url}|{_escape(label)}>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}]}
