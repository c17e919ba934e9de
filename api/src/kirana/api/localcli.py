"""`kirana status` and `kirana completion`: the local shop at a glance, and shell completion.

Registered on the `kirana` command by `kirana.api.cli`. `status` reads the run record
`kirana run` keeps (kirana.api.localshop); `completion` prints or installs typer's scripts for
bash, zsh and fish, which call back into `kirana` with `_KIRANA_COMPLETE` set (see `cli.main`).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from kirana.api import localshop
from kirana.api.clikit import JsonOpt, fail, out, settings_or_exit


def status(as_json: JsonOpt = False) -> None:
    """Show the shop `kirana run` is running here: its URLs and pid (exit 1 when none is)."""
    path, state = localshop.locate(settings_or_exit())
    if state is None:
        fail(f"no `kirana run` is running here (no {path})")
    if not localshop.is_alive(state):
        fail(f"the `kirana run` recorded in {path} (pid {state.pid}) is no longer running (stale record)")
    if as_json:
        sys.stdout.write(localshop.dump_public(state) + "\n")
        return
    rows = [
        ("kirana run", f"pid {state.pid}, {state.status}, record {path}"),
        ("API", state.api_url or "(starting)"),
        ("PostgreSQL", f"{localshop.redact(state.database_url)} ({state.database})"),
        ("Redis", f"{localshop.redact(state.redis_url)} ({state.redis})"),
        ("Razorpay", f"{state.razorpay_base_url} (fake)" if state.razorpay_base_url else "configured keys"),
    ]
    for name, value in rows:
        out.print(f"{name:<11} {value}")


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(
    shell: Annotated[Shell, typer.Argument(help="The shell: bash, zsh or fish.")],
    install: Annotated[
        bool,
        typer.Option(
            "--install", help="Install it for this user (the shell's usual place) instead of printing it."
        ),
    ] = False,
) -> None:
    """Print the shell completion script: `eval "$(kirana completion bash)"` in ~/.bashrc, or
    `kirana completion fish > ~/.config/fish/completions/kirana.fish`; --install does that."""
    from typer import _completion_shared as shell_completion  # typer's own scripts and installer

    if install:
        path = shell_completion.install(
            shell=shell.value, prog_name="kirana", complete_var="_KIRANA_COMPLETE"
        )[1]
        out.print(f"{shell} completion installed in {path}; open a new shell to use it")
        return
    sys.stdout.write(
        shell_completion.get_completion_script(
            prog_name="kirana", complete_var="_KIRANA_COMPLETE", shell=shell.value
        )
    )
    sys.stdout.write("\n")
