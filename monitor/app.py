"""What every command needs, built once from the settings: database, rules, notifiers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from monitor.config import Settings
from monitor.rules import RuleSet, load_rules
from storage.db import Database


@dataclass
class App:
    settings: Settings

    @cached_property
    def db(self) -> Database:
        database = Database(self.settings.database_url)
        database.ensure_schema()
        return database

    def load_rules(self) -> RuleSet:
        return load_rules(self.settings.rules_dir, set(self.settings.channels))

    def build_notifiers(self):
        from notifiers import build_notifiers

        path = str(self.settings.config_path) if self.settings.config_path else None
        return build_notifiers(self.settings.channels, path)
