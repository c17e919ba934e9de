"""What every `kirana` sub-command shares: settings with the local shop found, errors, exit codes.

Used by `kirana.api.cli` and `kirana.api.payments.cli`. The exit codes are the contract scripts
and the operator's Jobs rely on: 0 success, 1 a runtime failure (a failed step or check), 2 bad
usage or configuration, each failure as one line on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer._click import exceptions as click_errors  # typer vendors click; its exceptions live here
from typer._click.core import Command
from typer._click.globals import get_current_context

from kirana.api import localshop
from kirana.api.settings import Settings, SettingsError, load_settings

# soft_wrap: a long path or URL stays on one line for scripts and copy-paste
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Say on stderr where the database and Redis URLs came from."),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit with `code` (1 runtime failure, 2 usage or configuration)."""
    err.print(f"[bold red]error:[/] {escape(' '.join(message.split()))}")
    raise typer.Exit(code)


def emit(result: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, default=str, indent=2) + "\n")
    elif human is not None:
        out.print(human)


def _root_params() -> dict[str, Any]:
    ctx = get_current_context(silent=True)
    return dict(ctx.find_root().params) if ctx is not None else {}


def settings_or_exit() -> Settings:
    """Settings from the environment, `.env` and the global options; exit 2 when invalid."""
    overrides: dict[str, Any] = {}
    data_dir = _root_params().get("data_dir")
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir)
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def shop_settings(*needs: localshop.Need, verbose: bool = False) -> Settings:
    """Settings with the URLs in `needs` taken from the running `kirana run` when not configured.

    Exit 2 with one line when one is missing and no shop runs; with --verbose (here or before
    the sub-command) say on stderr where each came from.
    """
    settings = settings_or_exit()
    try:
        found = localshop.discover(settings, needs)
    except localshop.NoShop as exc:
        fail(str(exc), 2)
    if verbose or _root_params().get("verbose"):
        for line in found.sources:
            err.print(f"[dim]using {escape(line)}[/]")
    return found.settings


def run(command: Command, args: Sequence[str] | None = None) -> int:
    """Run the command line; bad usage is one line and exit code 2 (click prints a box of text)."""
    try:
        code = command.main(args=args, prog_name="kirana", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()  # `kirana db` alone: the group's help, which lists what it takes
        return 2
    except click_errors.UsageError as exc:
        where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
        line = " ".join(exc.format_message().split()).rstrip(".") + where
        err.print(f"[bold red]error:[/] {escape(line)}")
        return 2
    except click_errors.ClickException as exc:
        err.print(f"[bold red]error:[/] {escape(' '.join(exc.format_message().split()))}")
        return exc.exit_code
    except typer.Abort:
        err.print("[bold red]error:[/] aborted")
        return 1
    return code if isinstance(code, int) else 0
