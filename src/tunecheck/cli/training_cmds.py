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
