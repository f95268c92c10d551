"""Verbs around evaluation runs: ``run``, ``runs``, ``show``, ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Table

from tunecheck.cli import app, console, err_console, print_json
from tunecheck.errors import TunecheckError

if TYPE_CHECKING:
    from tunecheck.results import RunResult

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
    mlflow: str | None = typer.Option(
        None,
        "--mlflow",
        help="Also log the run to this MLflow tracking URI (e.g. sqlite:///mlflow.db); "
        "overrides tracking.mlflow.tracking_uri.",
    ),
    wandb: str | None = typer.Option(
        None,
        "--wandb",
        help="Also log the run to this W&B project (offline unless the spec says online).",
    ),
) -> None:
    """Evaluate every contender on the locked test split, run the probes and print the verdict.

    Re-running the same spec reuses every cached generation (zero model calls). Ctrl-C stops
    cleanly; run the same command again to resume.
    """
    from tunecheck.runner import RunOptions, run
    from tunecheck.spec import load_spec

    if fail_on not in ("iterate", "abandon", "never"):
        raise TunecheckError(f"--fail-on must be iterate, abandon or never, not {fail_on!r}")
    from rich.markup import escape

    from tunecheck.tracking import merge_tracking

    spec = load_spec(spec_path)
    outcome = run(
        spec,
        options=RunOptions(
            limit=limit,
            store_url=store,
            allow_overlap=allow_overlap,
            probes=not no_probes,
            show_progress=not quiet and not as_json,
            tracking=merge_tracking(spec.tracking, mlflow_uri=mlflow, wandb_project=wandb),
        ),
        spec_path=spec_path,
        console=err_console,
    )
    _emit(outcome.result, as_json=as_json, out=out)
    if not as_json:
        console.print(
            f"[dim]run {outcome.run_id} · {outcome.model_calls} model calls · {outcome.seconds:.1f} s · store {outcome.store_url}[/]"
        )
    for t in outcome.tracking:
        if t.ok:
            err_console.print(f"[dim]logged to {t.tracker}: run {t.run_id} at {t.location}[/]")
        else:
            err_console.print(
                f"[bold red]error:[/] {t.tracker} tracking failed: {escape(str(t.error))}\n"
                f"  the evaluation itself is stored: run {outcome.run_id} "
                f"(`tunecheck report {outcome.run_id}`)",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
    if outcome.tracking_failed:
        raise typer.Exit(2)
    from tunecheck.verdict import exit_code

    raise typer.Exit(exit_code(outcome.result.verdict, fail_on))


def _emit(result: RunResult, *, as_json: bool, out: Path | None) -> None:
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
    limit: int = typer.Option(20, "--limit", min=1, help="How many rows to list (newest first)."),
    spec: str | None = typer.Option(
        None, "--spec", help="Only runs of this spec (its name, file path or hash prefix)."
    ),
    task: str | None = typer.Option(None, "--task", help="Only this task."),
    candidate: str | None = typer.Option(None, "--candidate", help="Only this candidate."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List stored runs, newest first: task, candidate, primary metric, delta and verdict."""
    from tunecheck.history import run_summaries
    from tunecheck.report import _fmt
    from tunecheck.store.existing import open_existing_store

    rows = run_summaries(
        open_existing_store(store), spec=spec, task=task, candidate=candidate, limit=limit
    )
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        filtered = spec or task or candidate
        console.print(
            "no run matches these filters"
            if filtered
            else "no runs stored yet: `tunecheck run tunecheck.yaml` makes one"
        )
        return
    table = Table("id", "created", "status", "task", "candidate", "metric", "value",
                  "Δ pts [95% CI] vs strongest", "verdict")  # fmt: skip
    for r in rows:
        delta = (
            f"{_fmt.pts(r.delta)} {_fmt.ci_pts(r.ci_low, r.ci_high)} vs {r.baseline}"
            if r.delta is not None
            else "-"
        )
        table.add_row(
            r.id,
            r.created_at or "-",
            r.status,
            r.task or "-",
            r.candidate or "-",
            (r.metric or "-") + ("" if r.higher_is_better else " ↓"),
            _fmt.value(r.value) if r.value is not None else "-",
            delta,
            r.verdict or "-",
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
    from tunecheck.tracking import stored_outcomes

    st = open_existing_store(store)
    run = st.get_run(run_id)
    if as_json:
        print_json({**run.to_dict(), "tracking": stored_outcomes(st, run.id)})
        return
    console.print(f"[bold]run {run.id}[/] · {run.name} · {run.status} · created {run.created_at}")
    console.print(
        f"spec {run.spec_hash[:12]} · lock {(run.lock_hash or '-')[:12]} · tunecheck {run.tool_version} · git {(run.git_commit or '-')[:8]}"
    )
    if run.overrides:
        console.print(f"[yellow]overrides: {run.overrides}[/]")
    table = Table("contender", "role", "model", "model fp", "prompt fp")
    for c in run.contenders:
        table.add_row(
            c.name,
            c.role,
            c.model,
            c.model_fingerprint[:12],
            c.prompt_fingerprint[:12],
        )
    console.print(table)
    for t in stored_outcomes(st, run.id):
        console.print(
            f"tracking {t['tracker']}: "
            + (f"run {t['run_id']} at {t['location']}" if t["ok"] else f"failed: {t['error']}"),
            highlight=False,
            markup=False,
        )
    if run.error:
        console.print(f"[red]{run.error}[/]")
    if run.result:
        from tunecheck.report import render_terminal
        from tunecheck.results import RunResult

        render_terminal(RunResult.model_validate(run.result), console)


@app.command("report")
def report_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    fmt: str = typer.Option("md", "--format", "-f", help="md, json, html or terminal."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    store: str | None = StoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (same as --format json)."),
) -> None:
    """Rebuild a run's report from the store, without running any model."""
    from tunecheck.report import render_json, render_markdown, render_terminal
    from tunecheck.results import RunResult
    from tunecheck.store.existing import open_existing_store

    fmts: dict[str, Literal["md", "json", "html", "terminal"]] = {
        "html": "html",
        "md": "md",
        "markdown": "md",
        "json": "json",
        "terminal": "terminal",
    }
    if as_json:
        fmt = "json"
    if fmt not in fmts:
        raise TunecheckError(
            f"unknown report format {fmt!r}", hint="use --format md, json, html or terminal"
        )
    st = open_existing_store(store)
    run = st.get_run(run_id)
    if not run.result:
        raise TunecheckError(
            f"run {run.id} has no stored result (status: {run.status})",
            hint="re-run its spec with `tunecheck run` to complete it",
        )
    result = RunResult.model_validate(run.result)
    if fmts[fmt] == "terminal":
        render_terminal(result, console)
        return
    if fmts[fmt] == "html":
        from tunecheck.report.html import render_html

        text = render_html(st, run.id)
    else:
        text = render_json(result) if fmts[fmt] == "json" else render_markdown(result)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        typer.echo(text)
