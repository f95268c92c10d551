"""Verbs for during-training work: ``diagnose`` (read the curves) and ``checkpoints`` (rank them)."""

from __future__ import annotations

from pathlib import Path

import typer

from tunecheck.cli import app, console, print_json

_COLOURS = {
    "healthy": "green",
    "overfitting": "yellow",
    "underfitting": "yellow",
    "unstable": "red",
    "no_eval": "magenta",
}


@app.command("diagnose")
def diagnose_cmd(
    path: Path = typer.Argument(
        ..., help="trainer_state.json, a checkpoint folder, or the Trainer's output_dir"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the diagnosis as JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Also plot the curves to this PNG."),
) -> None:
    """Name a training run's curve pattern (healthy, overfitting, underfitting, unstable, no_eval)."""
    from tunecheck.training.curves import diagnose, load_trainer_state, plot_curves

    state = load_trainer_state(path)
    result = diagnose(state)
    if plot is not None:
        plot_curves(state, plot)
    if as_json:
        data = result.model_dump(mode="json")
        if plot is not None:
            data["plot"] = str(plot)
        print_json(data)
        return
    colour = _COLOURS[result.pattern]
    console.print(f"[bold {colour}]{result.pattern.upper()}[/] {result.headline}", highlight=False)
    console.print(f"[dim]{result.source}[/]", highlight=False)
    console.print()
    console.print(result.explanation, highlight=False)
    console.print()
    for reason in result.reasons:
        console.print(f"  • {reason}", highlight=False)
    if result.best_checkpoint:
        console.print(f"\n[bold]checkpoint to keep:[/] {result.best_checkpoint}", highlight=False)
    if plot is not None:
        console.print(f"plot: {plot}", highlight=False)
    console.print(f"\n[italic]{result.reminder}[/]", highlight=False)


@app.command("checkpoints")
def checkpoints_cmd(
    output_dir: Path = typer.Argument(
        ..., help="the Trainer's output_dir (holds checkpoint-* folders)"
    ),
    spec: Path = typer.Option(Path("tunecheck.yaml"), "--spec", help="The eval spec."),
    split: str = typer.Option(
        "val", "--split", help="Locked split to score on (never the test split)."
    ),
    task: str | None = typer.Option(None, "--task", help="Task name when the spec has several."),
    metric: str | None = typer.Option(
        None, "--metric", help="Rank by this metric (default: primary)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Score a seeded sample of N examples."
    ),
    store: str | None = typer.Option(None, "--store", help="Run-store URL (generation cache)."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
) -> None:
    """Rank saved checkpoints by the task metric on the validation split (keep the best at the task)."""
    from rich.table import Table

    from tunecheck.training.checkpoints import rank_checkpoints

    def progress(score) -> None:
        if not as_json:
            console.print(
                f"[dim]{Path(score.checkpoint).name}: {score.metrics} "
                f"({score.generated} generated, {score.seconds:.1f} s)[/]",
                highlight=False,
            )

    ranking = rank_checkpoints(
        output_dir,
        spec,
        split=split,
        task=task,
        sample_size=limit,
        metric=metric,
        store=store,
        on_checkpoint=progress,
    )
    if as_json:
        print_json(ranking.to_dict())
        return
    names = list(ranking.scores[0].metrics)
    table = Table(
        title=f"checkpoints by {ranking.metric} on {ranking.examples} {ranking.split} examples"
    )
    table.add_column("rank", justify="right")
    table.add_column("checkpoint")
    table.add_column("kind")
    for name in names:
        table.add_column(name, justify="right", style="bold" if name == ranking.metric else None)
    table.add_column("eval_loss", justify="right")
    for s in ranking.scores:
        table.add_row(
            str(s.rank),
            Path(s.checkpoint).name,
            s.kind,
            *(f"{s.metrics[n]:.4f}" for n in names),
            "" if s.eval_loss is None else f"{s.eval_loss:.4f}",
        )
    console.print(table)
    console.print(f"[bold green]keep:[/] {ranking.best.checkpoint}", highlight=False)
    for note in ranking.notes:
        console.print(f"  • {note}", highlight=False)
