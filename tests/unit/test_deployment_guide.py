"""Every command the deployment guide tells an SRE to type exists: each `make ...` line plans
without error (`make -n`, with the guide's own variables), each `kirana ...` names a real
sub-command with the options it is given, each `kubectl kirana <verb>` a real verb."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer
from typer._click.core import Command

from kirana.api.cli import app
from kirana.operator import cli as operator_cli

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "operations" / "deployment-guide.md"


def code_lines() -> list[str]:
    """Lines of the guide's fenced code blocks, and its inline `make ...` / `kirana ...` spans."""
    text = GUIDE.read_text()
    lines = [
        line.split(" #", 1)[0].strip()
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        for line in block.splitlines()
    ]
    lines += re.findall(r"`((?:make|kirana|kubectl kirana) [^`]+)`", text)
    return [line for line in lines if line]


def commands(program: str) -> list[list[str]]:
    found = []
    for line in code_lines():
        words = shlex.split(line)
        if words[: len(program.split())] == program.split():
            found.append(words[len(program.split()) :])
    return found


def test_the_guide_names_the_deploy_targets_and_kirana_commands() -> None:
    targets = {args[0] for args in commands("make")}
    assert {"deploy-staging", "deploy-prod", "deploy-rollback", "health-check"} <= targets
    assert len(commands("kirana")) >= 5
    assert commands("kubectl kirana")


@pytest.mark.parametrize("args", commands("make"), ids=lambda a: " ".join(a))
def test_each_make_command_is_a_real_target(args: list[str]) -> None:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to be done" not in proc.stdout and proc.stdout.strip()


@pytest.mark.parametrize("args", commands("kirana"), ids=lambda a: " ".join(a))
def test_each_kirana_command_is_a_real_sub_command(args: list[str]) -> None:
    command: Command = typer.main.get_command(app)
    path = ["kirana"]
    rest = list(args)
    while rest and getattr(command, "commands", None):  # the sub-command path, word by word
        word, subs = rest.pop(0), getattr(command, "commands", {})
        assert word in subs, f"{' '.join(path)} has no sub-command {word!r}"
        command, path = subs[word], [*path, word]
    assert not getattr(command, "commands", None), f"{' '.join(path)} needs a sub-command"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options, f"{' '.join(path)} has no option {word}"


def test_each_kubectl_kirana_verb_exists() -> None:
    parser = operator_cli._parser()
    [verbs] = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for args in commands("kubectl kirana"):
        assert args[0] in verbs, f"kubectl kirana has no verb {args[0]!r}"
