"""Docs that cannot rot: the README's commands, every command's help, the JSON fields."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_install_and_test_commands_and_ci_runs_the_test_one():
    install, test = _readme_commands()[:2]
    assert "newsmon run --once" in install
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text()


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


def test_every_command_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for path, command in _commands(cli):
        assert command.help, f"newsmon {' '.join(path)} has no help"
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0
        if not hasattr(command, "commands"):
            assert f"newsmon {' '.join(path)}" in readme, f"README does not show newsmon {' '.join(path)}"


def test_json_fields_are_documented():
    from datetime import UTC, datetime

    from monitor.model import DevelopmentView

    documented = (ROOT / "docs" / "json.md").read_text()
    now = datetime.now(UTC)
    view = DevelopmentView(id=1, story_id=1, story_title="t", kind="new_fact", text="x", score=0.5, source="s",
                           article_id=1, article_url=None, article_title="a", published_at=now, detected_at=now,
                           closest_text="y", closest_similarity=0.2)
    for name in view.to_json():
        assert f"`{name}`" in documented, f"docs/json.md does not document {name}"


def test_every_setting_is_documented():
    from monitor.config import Settings

    documented = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        if name != "config_path":  # set by --config itself, not a setting
            assert f"`{name}`" in documented, f"docs/configuration.md does not document {name}"
