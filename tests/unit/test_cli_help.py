"""`kirana --help` and every sub-command's help are complete: each command and each of its
options and arguments says what it is for."""

from __future__ import annotations

from collections.abc import Iterator

import typer
from typer._click.core import Command

from kirana.api.cli import app


def _commands(command: Command, path: str = "kirana") -> Iterator[tuple[str, Command]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():  # a group's sub-commands
        yield from _commands(sub, f"{path} {name}")


def test_every_command_option_and_argument_has_help() -> None:
    missing = []
    commands = list(_commands(typer.main.get_command(app)))
    for path, command in commands:
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.params:
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path} {param.name}")
    assert missing == []
    names = {path for path, _ in commands}
    assert {"kirana status", "kirana completion", "kirana db backup", "kirana dev pay"} <= names
