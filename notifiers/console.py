"""Print each alert as a readable block on the terminal."""

from __future__ import annotations

import sys
from typing import Any, Literal

from monitor.errors import NotifyError
from notifiers.base import AlertMessage, Options, parse_options
from notifiers.text import render_text


class ConsoleOptions(Options):
    stream: Literal["stdout", "stderr"] = "stdout"


class ConsoleNotifier:
    """Writes one block per alert to standard output (or `stream = "stderr"`).

    Options: `stream` — "stdout" (default) or "stderr".
    """

    kind = "console"

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = parse_options(ConsoleOptions, name, options)

    def send(self, message: AlertMessage) -> None:
        # Look the stream up at each send: tests and the CLI may replace sys.stdout.
        stream = sys.stdout if self.options.stream == "stdout" else sys.stderr
        try:
            stream.write(render_text(message) + "\n")
            stream.flush()
        except OSError as error:  # a closed pipe (`newsmon run | head`) — the alert stays due
            raise NotifyError(self.name, f"cannot write to {self.options.stream}: {error}") from error

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<ConsoleNotifier {self.name!r}>"
