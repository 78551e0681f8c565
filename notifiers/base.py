"""What every notifier shares: the message it is given, the protocol it implements, and the
helpers that keep its settings validated and its secrets out of sight.

A notifier is a small class: a `kind`, a constructor `(name, options)` that validates its
options (raising ConfigError naming `channels.<name>.<field>`) and `send(message)` that
delivers one alert or raises NotifyError — `permanent=True` when trying again cannot help
(a refused address, a revoked webhook), else the outbox retries later.

Secrets (SMTP passwords, webhook URLs) are never written in the config file: the options
name an environment variable or a file that holds them. They are read once, when the
notifier is built (so a missing secret fails at start-up, not at the first alert), kept in
a `SecretStr`, and replaced by `***` in every error message a notifier raises.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from monitor.errors import ConfigError, NotifyError
from monitor.model import DevelopmentView, FeedEventView

REDACTED = "***"


@dataclass(frozen=True)
class AlertMessage:
    """One alert to deliver: which rule sent which development — or which feed event (a feed
    going down or recovering) — to which channel. Exactly one of the two is set."""

    rule: str
    channel: str
    alert_id: int
    development: DevelopmentView | None = None
    feed_event: FeedEventView | None = None


@runtime_checkable
class Notifier(Protocol):
    kind: ClassVar[str]
    name: str

    def send(self, message: AlertMessage) -> None:
        """Deliver one alert, or raise NotifyError (permanent or not)."""

    def close(self) -> None:
        """Release connections; the notifier is not used afterwards."""


class RateLimited(NotifyError):
    """The service asked us to slow down; `retry_after` (seconds) is its wish, if it said one."""

    def __init__(self, channel: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(channel, message, permanent=False)
        self.retry_after = retry_after


class Options(BaseModel):
    """Base of every notifier's options: unknown keys are errors, values do not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=Options)


def parse_options(model: type[OptionsT], channel: str, options: dict[str, Any]) -> OptionsT:
    """Validate a channel's options; the error names `channels.<channel>.<field>`."""
    try:
        return model.model_validate(options)
    except ValidationError as error:
        # A misspelt key also makes its field "missing": report the cause, the unknown key, first.
        first = min(error.errors(), key=lambda problem: problem["type"] != "extra_forbidden")
        loc = ".".join(str(part) for part in first["loc"])
        field = f"channels.{channel}" + (f".{loc}" if loc else "")
        if first["type"] == "extra_forbidden":
            known = [info.alias or name for name, info in model.model_fields.items()]
            close = difflib.get_close_matches(str(first["loc"][-1]), known, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        else:
            message = first["msg"]
        # pydantic prefixes custom validator messages with "Value error, "; a person needs only the rest.
        raise ConfigError(None, field, message.removeprefix("Value error, ")) from None


def read_secret(channel: str, what: str, env: str | None, file: Path | None) -> SecretStr:
    """The secret named by `<what>_env` (an environment variable) or `<what>_file` (a file).

    Exactly one of the two must be given; the options models check that, this reads it.
    Surrounding whitespace (the newline at the end of a file) is not part of the secret.
    """
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ConfigError(
                None, f"channels.{channel}.{what}_env", f"environment variable {env} is not set"
            )
        return SecretStr(value)
    if file is None:
        raise ConfigError(None, f"channels.{channel}", f"set {what}_env or {what}_file")
    try:
        value = Path(file).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(
            None, f"channels.{channel}.{what}_file", f"cannot read {file}: {error.strerror}"
        ) from None
    if not value:
        raise ConfigError(None, f"channels.{channel}.{what}_file", f"{file} is empty")
    return SecretStr(value)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of every (non-empty) secret replaced by ***."""
    # Longest first, so that a secret containing another is replaced whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def one_of(options: BaseModel, first: str, second: str) -> None:
    """Raise ValueError unless exactly one of two alternative options is set."""
    given = [name for name in (first, second) if getattr(options, name) is not None]
    if len(given) != 1:
        raise ValueError(f"set exactly one of {first} or {second}")


def refuse_inline_secret(data: Any, key: str, what: str, short: str | None = None) -> Any:
    """A `model_validator(mode="before")` body: secrets come from `<key>_env` or `<key>_file`,
    never from the config file itself (it is often in version control)."""
    if isinstance(data, dict) and key in data:
        raise ValueError(
            f"the {what} is a secret: name an environment variable ({key}_env) "
            f"or a file ({key}_file) that holds it, never the {short or what} itself"
        )
    return data
