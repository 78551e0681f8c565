"""Configuration: one TOML file, every setting also from NEWSMON_* environment variables.

Precedence: environment > config file > defaults. With no file at all newsmon runs on
SQLite in ./data, the ./seeds fixture feed and the ./rules folder.
Relative paths in a config file are relative to that file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from monitor.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float) -> float:
    """'90s', '10m', '1.5h', '2d', '1w' or a number of seconds → seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (try 30s, 10m, 2h, 1d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    return seconds


class FeedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str  # http(s) URL, or a directory of article files
    title: str | None = None
    interval: float | None = None  # seconds; None: the default poll interval
    full_text: bool = False

    _duration = field_validator("interval", mode="before")(lambda v: None if v is None else parse_duration(v))

    @property
    def kind(self) -> str:
        return "http" if self.url.startswith(("http://", "https://")) else "directory"


class ChannelConfig(BaseModel):
    """A delivery channel. `kind` picks the notifier; the notifier validates the other keys."""

    model_config = ConfigDict(extra="allow")

    kind: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSMON_", extra="forbid", env_nested_delimiter="__")

    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite:///<data_dir>/newsmon.db
    rules_dir: Path = Path("rules")
    seeds_dir: Path = Path("seeds")
    poll_interval: float = 900.0
    # Adaptive polling stays within these bounds (a feed's own `interval` is taken as given).
    min_interval: float = 300.0
    max_interval: float = 4 * 3600.0
    max_backoff: float = 6 * 3600.0  # the longest wait between tries of a failing feed
    feed_down_alert_after: float = 6 * 3600.0  # failing this long raises a feed_down alert
    # A story nobody joined for this long is dormant: only a strong match revives it.
    quiet_period: float = 7 * 86400.0
    # Refuse feeds on private and loopback addresses (SSRF guard for shared deployments).
    fetch_allow_private: bool = False
    # Sentence embeddings as extra evidence that something was already said (newsmon[semantic]).
    semantic_matching: bool = False
    fetch_concurrency: int = Field(default=8, ge=1, le=256)  # fetches in flight in one process
    fetch_per_host: int = Field(default=2, ge=1, le=64)  # of which at most this many to one host
    # Article pages one full-text feed may fetch in one poll; the other entries wait for the
    # next polls. 30 covers the usual feed of 10-30 entries in one poll, bounds a first poll of
    # a 1 000-entry feed to some seconds and 30 requests to its publisher, and lets such a feed
    # catch up at one page per 10 s at the default min_interval (docs/fetching.md).
    full_text_pages_per_poll: int = Field(default=30, ge=1)
    # Entries of a feed stored in one transaction; unset: 25 on SQLite, 1 on PostgreSQL
    # (monitor/polling.py says why).
    store_batch: int | None = Field(default=None, ge=1, le=1000)
    shutdown_grace: float = 10.0  # seconds in-flight polls get to finish after SIGINT/SIGTERM
    feeds: list[FeedConfig] = Field(default_factory=list)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    config_path: Path | None = None
    _fixture: bool = PrivateAttr(default=False)  # feeds is the seeds fixture: none was configured

    @property
    def feeds_are_fixture(self) -> bool:
        return self._fixture

    _duration = field_validator("poll_interval", "min_interval", "max_interval", "max_backoff",
                                "feed_down_alert_after", "shutdown_grace", "quiet_period",
                                mode="before")(parse_duration)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if self.min_interval > self.max_interval:
            raise ValueError(f"min_interval ({self.min_interval:g}s) is longer than max_interval "
                             f"({self.max_interval:g}s)")
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'newsmon.db'}"
        if not self.feeds:
            self.feeds = [FeedConfig(url=str(self.seeds_dir), title="Seeds (fixture feed)")]
            self._fixture = True
        if not self.channels:
            self.channels = {
                "console": ChannelConfig(kind="console"),
                "jsonl": ChannelConfig(kind="jsonl", path=str(self.data_dir / "alerts.jsonl")),
            }
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment overrides them.
        return (env_settings, init_settings)


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    for key in ("data_dir", "rules_dir", "seeds_dir"):
        if key in data and not Path(str(data[key])).is_absolute():
            data[key] = str(base / str(data[key]))
    for feed in data.get("feeds", []) or []:
        url = feed.get("url") if isinstance(feed, dict) else None
        if isinstance(url, str) and not url.startswith(("http://", "https://")) and not Path(url).is_absolute():
            feed["url"] = str(base / url)
    for channel in (data.get("channels") or {}).values():
        for option in ("path", "password_file", "webhook_url_file", "ca_file"):
            value = channel.get(option) if isinstance(channel, dict) else None
            if isinstance(value, str) and not Path(value).is_absolute():
                channel[option] = str(base / value)
    db = data.get("database_url")
    if isinstance(db, str) and db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
        rel = db.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            data["database_url"] = f"sqlite:///{base / rel}"
    return data


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read the config file (argument, else NEWSMON_CONFIG, else none) and the environment."""
    path = path or os.environ.get("NEWSMON_CONFIG") or None
    data: dict[str, Any] = {}
    where = None
    if path:
        where = str(path)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(where, None, "file not found") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(where, None, f"not valid TOML: {error}") from None
        data = _resolve_paths(data, Path(path).resolve().parent)
        data["config_path"] = Path(path)
    try:
        return Settings(**data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        source = where
        if field and os.environ.get(f"NEWSMON_{field.split('.')[0].upper()}") is not None:
            source = f"environment NEWSMON_{field.split('.')[0].upper()}"
        raise ConfigError(source, field, first["msg"]) from None
