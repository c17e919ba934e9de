"""Shell completion for `kirana`: the scripts `kirana completion SHELL` prints, run as the shell
runs them (bash for real; zsh and fish through the same protocol their scripts speak)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = str(Path(sys.executable).parent)  # where the `kirana` entry point is installed


def _env(home: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KIRANA_", "_KIRANA"))}
    return base | {"HOME": str(home), "PATH": f"{BIN}:{os.environ['PATH']}"} | extra


def _bash(script: str, home: Path) -> str:
    done = subprocess.run(
        ["bash", "-c", script], env=_env(home), capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_bash_completes_commands_and_options(tmp_path: Path) -> None:
    ask = '_kirana_completion kirana; echo "${COMPREPLY[*]}"\n'
    complete = (
        'eval "$(kirana completion bash)"\n'
        f"COMP_WORDS=(kirana db ba); COMP_CWORD=2; {ask}"
        f"COMP_WORDS=(kirana db backup --); COMP_CWORD=3; {ask}"
        f"COMP_WORDS=(kirana completion ''); COMP_CWORD=2; {ask}"
    )
    commands, options, shells = _bash(complete, tmp_path).splitlines()
    assert commands == "backup"
    assert {"--out", "--json", "--verbose"} <= set(options.split())
    assert set(shells.split()) == {"bash", "zsh", "fish"}


def test_install_puts_bash_completion_where_a_new_shell_reads_it(tmp_path: Path) -> None:
    installed = subprocess.run(
        [f"{BIN}/kirana", "completion", "bash", "--install"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert installed.returncode == 0, installed.stderr
    assert "source" in (tmp_path / ".bashrc").read_text()
    got = _bash(
        "source ~/.bashrc\nCOMP_WORDS=(kirana aud); COMP_CWORD=1; _kirana_completion kirana; "
        'echo "${COMPREPLY[*]}"',
        tmp_path,
    )
    assert got.split() == ["audit"]


def test_zsh_and_fish_scripts_and_their_answers(tmp_path: Path) -> None:
    def kirana(*args: str, **env: str) -> str:
        return subprocess.run(
            [f"{BIN}/kirana", *args], env=_env(tmp_path, **env), capture_output=True, text=True, timeout=60
        ).stdout

    zsh = kirana("completion", "zsh")
    assert zsh.startswith("#compdef kirana") and "_KIRANA_COMPLETE=complete_zsh kirana" in zsh
    fish = kirana("completion", "fish")
    assert "complete --command kirana" in fish and "_KIRANA_COMPLETE=complete_fish" in fish
    # what each script asks `kirana` for when the user presses Tab
    zsh_answer = kirana(_KIRANA_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="kirana db ")
    assert '"backup":' in zsh_answer and '"restore":' in zsh_answer
    fish_answer = kirana(
        _KIRANA_COMPLETE="complete_fish",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
        _TYPER_COMPLETE_ARGS="kirana au",
    )
    assert fish_answer.split("\t")[0] == "audit"
