"""Verbs around evaluation runs: ``run``, ``runs``, ``show``, ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from tunecheck.cli import app, console, err_console, print_json
from tunecheck.errors import TunecheckError

StoreOpt = typer.Option(
    None,
    "--store",
    envvar="TUNECHECK_STORE",
    help="SQLAlchemy URL of the run store (default: sqlite in .tunecheck/).",
)


@app.command("run")
def run_cmd(
    spec_path: Path = typer.Argument(Path("tunecheck.yaml"), help="The eval spec."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Use only the first N test examples (smoke runs)."
    ),
    store: str | None = StoreOpt,
    allow_overlap: bool = typer.Option(
        False,
        "--allow-overlap",
        help="Run even if the test split overlaps training data (recorded with the run).",
    ),
    no_probes: bool = typer.Option(False, "--no-probes", help="Skip capability-regression probes."),
    fail_on: str = typer.Option(
        "never",
        "--fail-on",
        help="Exit non-zero for CI: 'iterate' unless DEPLOY, 'abandon' only on ABANDON, 'never'.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Also write report.json and report.md into this folder."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the result as JSON instead of tables."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Evaluate every contender on the locked test split, run the probes and print the verdict.

    Re-running the same spec reuses every cached generation (zero model calls). Ctrl-C stops
    cleanly; run the same command again to resume.
    """
    from tunecheck.runner import RunOptions, run
    from tunecheck.spec import load_spec

    if fail_on not in ("iterate", "abandon", "never"):
        raise TunecheckError(f"--fail-on must be iterate, abandon or never, not {fail_on!r}")
    spec = load_spec(spec_path)
    outcome = run(
        spec,
        options=RunOptions(
            limit=limit,
            store_url=store,
            allow_overlap=allow_overlap,
            probes=not no_probes,
            show_progress=not quiet and not as_json,
        ),
        spec_path=spec_path,
        console=err_console,
    )
    _emit(outcome.result, as_json=as_json, out=out)
    if not as_json:
        console.print(
            f"[dim]run {outcome.run_id} · {outcome.model_calls} model calls · {outcome.seconds:.1f} s · store {outcome.store_url}[/]"
        )
    from tunecheck.verdict import exit_code

    raise typer.Exit(exit_code(outcome.result.verdict, fail_on))


def _emit(result: object, *, as_json: bool, out: Path | None) -> None:
    from tunecheck.report import render_json, render_markdown, render_terminal

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(render_json(result), encoding="utf-8")
        (out / "report.md").write_text(render_markdown(result), encoding="utf-8")
    if as_json:
        typer.echo(render_json(result))
    else:
        render_terminal(result, console)
        if out is not None:
            console.print(f"[dim]reports written to {out}/report.json and {out}/report.md[/]")


@app.command("runs")
def runs_cmd(
    store: str | None = StoreOpt,
    limit: int = typer.Option(20, "--limit", min=1, help="How many recent runs to list."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List stored runs, newest first."""
    from tunecheck.store.existing import open_existing_store

    rows = open_existing_store(store).list_runs(limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no runs stored yet: `tunecheck run tunecheck.yaml` makes one")
        return
    table = Table("id", "name", "created", "status", "verdict", "tool", "git")
    for r in rows:
        table.add_row(
            r["id"],
            r["name"],
            r["created_at"],
            r["status"],
            r["verdict"] or "-",
            r["tool_version"],
            (r["git_commit"] or "-")[:8],
        )
    console.print(table)


@app.command("show")
def show_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    store: str | None = StoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one stored run: its contenders, status and results."""
    from tunecheck.store.existing import open_existing_store

    run = open_existing_store(store).get_run(run_id)
    if as_json:
        print_json(run)
        return
    console.print(
        f"[bold]run {run['id']}[/] · {run['name']} · {run['status']} · created {run['created_at']}"
    )
    console.print(
        f"spec {run['spec_hash'][:12]} · lock {(run['lock_hash'] or '-')[:12]} · tunecheck {run['tool_version']} · git {(run['git_commit'] or '-')[:8]}"
    )
    if run.get("overrides"):
        console.print(f"[yellow]overrides: {run['overrides']}[/]")
    table = Table("contender", "role", "model", "model fp", "prompt fp")
    for c in run["contenders"]:
        table.add_row(
            c["name"],
            c["role"],
            c["model"],
            c["model_fingerprint"][:12],
            c["prompt_fingerprint"][:12],
        )
    console.print(table)
    if run.get("error"):
        console.print(f"[red]{run['error']}[/]")
    if run.get("result"):
        from tunecheck.report import render_terminal
        from tunecheck.results import RunResult

        render_terminal(RunResult.model_validate(run["result"]), console)


@app.command("report")
def report_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    fmt: str = typer.Option("md", "--format", "-f", help="md, json or terminal."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    store: str | None = StoreOpt,
) -> None:
    """Rebuild a run's report from the store, without running any model."""
    from tunecheck.report import render_json, render_markdown, render_terminal
    from tunecheck.results import RunResult
    from tunecheck.store.existing import open_existing_store

    fmts: dict[str, Literal["md", "json", "terminal"]] = {
        "md": "md",
        "markdown": "md",
        "json": "json",
        "terminal": "terminal",
    }
    if fmt not in fmts:
        raise TunecheckError(
            f"unknown report format {fmt!r}", hint="use --format md, json or terminal"
        )
    run = open_existing_store(store).get_run(run_id)
    if not run.get("result"):
        raise TunecheckError(
            f"run {run['id']} has no stored result (status: {run['status']})",
            hint="re-run its spec with `tunecheck run` to complete it",
        )
    result = RunResult.model_validate(run["result"])
    if fmts[fmt] == "terminal":
        render_terminal(result, console)
        return
    text = render_json(result) if fmts[fmt] == "json" else render_markdown(result)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        typer.echo(text)
