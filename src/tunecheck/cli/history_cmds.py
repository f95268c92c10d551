"""Verbs over stored runs: ``compare`` (two runs, example by example) and ``history``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from tunecheck.cli import app, console, print_json
from tunecheck.cli.run_cmds import StoreOpt

CAP = 10


@app.command("compare")
def compare_cmd(
    run_a: str = typer.Argument(..., help="The earlier/reference run (id or unique prefix)."),
    run_b: str = typer.Argument(..., help="The run compared with it."),
    task: str | None = typer.Option(None, "--task", help="Task to compare (default: the first)."),
    store: str | None = StoreOpt,
    alpha: float = typer.Option(0.05, "--alpha", min=0.0001, max=0.5, help="Significance level."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (every flipped example)."),
) -> None:
    """Compare two runs on the same locked test set: the candidates' paired test (B minus A)
    on the primary metric and the examples that flipped each way."""
    from tunecheck.history import compare_runs
    from tunecheck.report import _fmt
    from tunecheck.store import open_store

    rc = compare_runs(open_store(store), run_a, run_b, task=task, alpha=alpha)
    if as_json:
        print_json(rc.model_dump(mode="json") | {"worse": rc.worse})
        return
    c = rc.comparison
    console.print(
        f"[bold]{rc.run_b}[/] ({rc.candidate_b}) vs [bold]{rc.run_a}[/] ({rc.candidate_a}) · "
        f"task {rc.task} · {rc.metric} · {c.n} paired examples · lock {str(rc.lock_hash)[:12]}",
        highlight=False,
    )
    if rc.note:
        console.print(f"[yellow]{rc.note}[/]")
    console.print(
        f"A {_fmt.value(c.baseline_value)} → B {_fmt.value(c.candidate_value)}: "
        f"Δ {_fmt.pts(c.delta)} pts {_fmt.ci_pts(c.ci_low, c.ci_high)}, "
        f"p {_fmt.pval(c.p_value)} ({c.test})" + (f" · {c.note}" if c.note else ""),
        highlight=False,
    )
    verdict = (
        "[bold red]B is significantly worse[/]"
        if rc.worse
        else "[bold green]B is significantly better[/]"
        if c.significant
        else "no significant difference"
    )
    console.print(verdict)
    for kind, items in (("worse in B", rc.flips.broken), ("better in B", rc.flips.fixed)):
        console.print(f"{len(items)} example(s) {kind}" + (":" if items else ""))
        for f in items[:CAP]:
            console.print(f"  {escape(f.id)}: {f.before} → {f.after}", highlight=False)
        if len(items) > CAP:
            console.print(f"  … {len(items) - CAP} more (--json lists them all)")


@app.command("history")
def history_cmd(
    task: str | None = typer.Option(None, "--task", help="Task (default: the newest run's)."),
    lock: str | None = typer.Option(
        None, "--lock", help="Lock hash prefix, when the task's runs span several locks."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Write a trend chart to this PNG."),
    store: str | None = StoreOpt,
    alpha: float = typer.Option(0.05, "--alpha", min=0.0001, max=0.5, help="Significance level."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The candidate's primary metric and delta across runs on one locked test set, oldest
    first; flags a run significantly worse than the last DEPLOY on the same examples."""
    from tunecheck.history import history, plot_history
    from tunecheck.report import _fmt
    from tunecheck.store import open_store

    report = history(open_store(store), task=task, lock=lock, alpha=alpha)
    written = plot_history(report, plot) if plot else None
    if as_json:
        print_json(report.model_dump(mode="json") | {"plot": str(written) if written else None})
        return
    table = Table(
        "run", "created", "candidate", report.metric, "Δ pts [95% CI] vs strongest",
        "verdict", "vs last DEPLOY", "",
        title=f"task {report.task} · lock {str(report.lock_hash)[:12]} · oldest first",
        title_justify="left",
    )  # fmt: skip
    for e in report.entries:
        vs = (
            f"{_fmt.pts(e.deploy_delta)} {_fmt.ci_pts(e.deploy_ci_low, e.deploy_ci_high)} "
            f"p {_fmt.pval(e.deploy_p_value)}"
            if e.vs_last_deploy
            else "-"
        )
        table.add_row(
            e.run_id, e.created_at or "-", e.candidate, _fmt.value(e.value),
            f"{_fmt.pts(e.delta)} {_fmt.ci_pts(e.ci_low, e.ci_high)} vs {e.baseline}",
            e.verdict or "-", vs,
            "[bold red]WORSE than last DEPLOY[/]" if e.regression else "",
        )  # fmt: skip
    console.print(table)
    for e in report.regressions:
        console.print(
            f"[bold red]regression:[/] run {e.run_id} is significantly worse than the last "
            f"DEPLOY ({e.vs_last_deploy}) on the same examples: "
            f"{_fmt.pts(e.deploy_delta)} pts {_fmt.ci_pts(e.deploy_ci_low, e.deploy_ci_high)}",
            highlight=False,
        )
    if written:
        console.print(f"[dim]trend chart written to {written}[/]")


@app.command("track")
def track_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    mlflow: str | None = typer.Option(None, "--mlflow", help="MLflow tracking URI."),
    wandb: str | None = typer.Option(None, "--wandb", help="W&B project (offline by default)."),
    store: str | None = StoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Log a stored run to MLflow and/or W&B (the run's spec `tracking:` block, or the flags):
    after a tracker failed during `tunecheck run`, or for runs made before tracking was set."""
    from tunecheck.errors import TunecheckError
    from tunecheck.history import load_result
    from tunecheck.spec import TrackingSpec
    from tunecheck.store import open_store
    from tunecheck.tracking import merge_tracking, record_outcomes, track_run

    st = open_store(store)
    result = load_result(st, run_id)
    raw = (st.get_run(result.run_id).spec or {}).get("tracking")
    spec_tracking = TrackingSpec.model_validate(raw) if raw else None
    tracking = merge_tracking(spec_tracking, mlflow_uri=mlflow, wandb_project=wandb)
    if tracking is None:
        raise TunecheckError(
            f"run {result.run_id} has no tracking configured",
            hint="pass --mlflow URI and/or --wandb PROJECT",
        )
    outcomes = track_run(result, tracking)
    record_outcomes(st, result.run_id, outcomes)
    if as_json:
        print_json([o.to_dict() for o in outcomes])
    else:
        for o in outcomes:
            if o.ok:
                console.print(f"logged to {o.tracker}: run {o.run_id} at {o.location}")
            else:
                console.print(f"[bold red]{o.tracker} tracking failed:[/] {escape(str(o.error))}")
    if any(not o.ok for o in outcomes):
        raise typer.Exit(2)
