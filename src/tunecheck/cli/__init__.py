"""The ``tunecheck`` command line. Thin: parse, call the library, print.

Each group of verbs lives in its own module and registers on :data:`app`.
User errors (:class:`~tunecheck.errors.TunecheckError`) are printed as one clear
message and exit non-zero; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import typer
from rich.console import Console

from tunecheck import __version__
from tunecheck.errors import TunecheckError

app = typer.Typer(
    name="tunecheck",
    help="Did fine-tuning this language model actually help? Paired, significance-tested "
    "before/after evaluation that ends with a verdict: DEPLOY, ITERATE or ABANDON.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# report tables need ~100 columns; pipes and CI logs get a fixed width instead of 80
console = Console(stderr=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tunecheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """tunecheck: did fine-tuning this language model actually help?"""
    _state["debug"] = debug


def print_json(data: Any) -> None:
    """Machine-readable output for ``--json`` (plain stdout, no colours)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def _register() -> None:
    # imported for their side effect: each module adds its verbs to `app`
    from tunecheck.cli import (  # noqa: F401
        data_cmds,
        history_cmds,
        init_cmds,
        judge_cmds,
        run_cmds,
        shadow_cmds,
        training_cmds,
        verdict_cmds,
        viewer_cmds,
    )

    with contextlib.suppress(ImportError):  # the demo verb is optional while being built
        from tunecheck.cli import demo_cmd  # noqa: F401


_register()


def main() -> None:
    """Console-script entry point."""
    debug = "--debug" in sys.argv
    try:
        app()
    except TunecheckError as err:
        if debug:
            raise
        err_console.print(
            f"[bold red]error:[/] {err}", highlight=False, markup=True, soft_wrap=True
        )
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
