"""Append each alert as one JSON object per line to a file (for scripts and other tools)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from monitor.errors import NotifyError
from notifiers.base import AlertMessage, Options, parse_options


class JsonlOptions(Options):
    path: Path


class JsonlNotifier:
    """Appends `{...development or feed event (docs/json.md)..., "rule", "channel", "alert_id"}`
    lines to `path`.

    Options: `path` — the file; its folder is created when missing.

    Each line is written with one `write` on a file opened for appending, then flushed and
    fsynced before `send` returns: a line is either wholly there or not at all, lines of
    several workers do not interleave, and an alert marked sent is on disk. A crash after the
    write and before the outbox records it can repeat a line; readers dedupe on `alert_id`.
    """

    kind = "jsonl"

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = parse_options(JsonlOptions, name, options)

    def send(self, message: AlertMessage) -> None:
        subject = message.feed_event or message.development
        assert subject is not None
        record = subject.to_json() | {
            "rule": message.rule,
            "channel": message.channel,
            "alert_id": message.alert_id,
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        path = self.options.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(descriptor, line)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as error:  # disk full, permissions: worth retrying once fixed
            raise NotifyError(self.name, f"cannot append to {path}: {error.strerror}") from error
        if written != len(line):
            raise NotifyError(self.name, f"short write to {path} ({written} of {len(line)} bytes)")

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<JsonlNotifier {self.name!r} path={str(self.options.path)!r}>"
