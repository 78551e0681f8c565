"""Notifiers: one small class per kind of channel, and the one registry that names them.

To add a kind: write `notifiers/<kind>.py` with a class implementing `Notifier` (see
notifiers/base.py), add it to NOTIFIERS, document its options in docs/notifiers.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.config import ChannelConfig
from monitor.errors import ConfigError
from notifiers.base import AlertMessage, Notifier, RateLimited
from notifiers.console import ConsoleNotifier
from notifiers.email import EmailNotifier
from notifiers.jsonl import JsonlNotifier
from notifiers.slack import SlackNotifier

NOTIFIERS: dict[str, type[Notifier]] = {
    "console": ConsoleNotifier,
    "jsonl": JsonlNotifier,
    "email": EmailNotifier,
    "slack": SlackNotifier,
}

__all__ = ["NOTIFIERS", "AlertMessage", "Notifier", "RateLimited", "build_notifiers", "close_notifiers"]


def build_notifiers(
    channels: Mapping[str, ChannelConfig], config_path: str | None = None
) -> dict[str, Notifier]:
    """A notifier for every configured channel, its options validated and its secrets read.

    Raises ConfigError naming `channels.<name>[.<field>]` (and `config_path`, when given)
    for an unknown kind, a bad option or a secret that cannot be read.
    """
    built: dict[str, Notifier] = {}
    try:
        for name, channel in channels.items():
            factory = NOTIFIERS.get(channel.kind)
            if factory is None:
                known = ", ".join(sorted(NOTIFIERS))
                raise ConfigError(
                    config_path, f"channels.{name}.kind", f"unknown kind {channel.kind!r} ({known})"
                )
            try:
                built[name] = factory(name, channel.options)  # type: ignore[call-arg]
            except ConfigError as error:
                raise ConfigError(config_path, error.field, error.message) from None
    except BaseException:
        close_notifiers(built)
        raise
    return built


def close_notifiers(notifiers: Mapping[str, Notifier]) -> None:
    for notifier in notifiers.values():
        notifier.close()
