"""One exception tree for newsmon; every error carries its subject.

    NewsmonError
     ├── ConfigError(path, field)
     ├── FeedError(url)
     ├── RuleError(path, line, field)
     └── NotifyError(channel)

The CLI turns any NewsmonError into one line on stderr and exit code 2 (user
mistakes) — no tracebacks for things a user can fix.
"""

from __future__ import annotations


class NewsmonError(Exception):
    """Base class: str(error) is the one line a person should read."""


class ConfigError(NewsmonError):
    def __init__(self, path: str | None, field: str | None, message: str) -> None:
        self.path, self.field, self.message = path, field, message
        where = path or "<environment>"
        if field:
            where += f": {field}"
        super().__init__(f"config error in {where}: {message}")


class FeedError(NewsmonError):
    def __init__(self, url: str, message: str) -> None:
        self.url, self.message = url, message
        super().__init__(f"feed {url}: {message}")


class RuleError(NewsmonError):
    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None) -> None:
        self.path, self.line, self.field, self.message = path, line, field, message
        where = path if line is None else f"{path}:{line}"
        if field:
            where += f": {field}"
        super().__init__(f"rule error in {where}: {message}")


class NotifyError(NewsmonError):
    """A delivery failed. `permanent` errors are not retried (bad address, 4xx)."""

    def __init__(self, channel: str, message: str, permanent: bool = False) -> None:
        self.channel, self.message, self.permanent = channel, message, permanent
        super().__init__(f"channel {channel}: {message}")
