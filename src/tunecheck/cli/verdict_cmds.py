"""Verbs about trusting the verdict: ``simulate`` (error rates of the decision rules)."""

from __future__ import annotations

import typer

from tunecheck.cli import app, console, print_json
from tunecheck.errors import TunecheckError


def _probe_arg(text: str) -> tuple[int, float, float, float]:
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise TunecheckError(
            f"--probe {text!r}: expected N:BASE_RATE:REL_CHANGE[:COPY]",
            hint="e.g. --probe 300:0.6:-0.15:0.8 (300 items, base 0.6, -15% relative, 80% copied)",
        )
    try:
        n = int(parts[0])
        base, change = float(parts[1]), float(parts[2])
        copy = float(parts[3]) if len(parts) == 4 else 0.8
    except ValueError:
        raise TunecheckError(
            f"--probe {text!r}: N must be an integer and the rates numbers", where="--probe"
        ) from None
    if n < 1 or not 0 <= base <= 1:
        raise TunecheckError(f"--probe {text!r}: N >= 1 and 0 <= BASE_RATE <= 1", where="--probe")
    return n, base, change, copy


@app.command("simulate")
def simulate_cmd(
    scenario: list[str] = typer.Option(
        [], "--scenario", "-s", help="Built-in scenario A, B, C or D (repeatable; default: all)."
    ),
    reps: int = typer.Option(1000, "--reps", min=1, help="Simulated runs per scenario."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulation."),
    probe_n: int | None = typer.Option(
        None, "--probe-n", min=1, help="Items per probe in the built-in scenarios (default 300)."
    ),
    bootstrap: int = typer.Option(2000, "--bootstrap", min=100, help="Bootstrap resamples."),
    task_n: int | None = typer.Option(None, "--task-n", min=2, help="Custom: task examples."),
    baseline_rate: float | None = typer.Option(
        None, "--baseline-rate", help="Custom: baseline accuracy (default 0.5)."
    ),
    gain: float | None = typer.Option(None, "--gain", help="Custom: true task gain (absolute)."),
    copy: float | None = typer.Option(
        None, "--copy", help="Custom: share of candidate answers copied (default 0.5)."
    ),
    probe: list[str] = typer.Option(
        [], "--probe", help="Custom probe N:BASE_RATE:REL_CHANGE[:COPY] (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Simulate runs with a known truth through the real decision code and print how often
    each verdict comes out (with 95% Monte-Carlo intervals).

    Without custom options it runs the built-in scenarios A-D (issue 13): A no gain; B a
    +20-point gain with unchanged probes; C the same gain with one probe at -15%; D one
    probe at -30%. Giving --task-n, --baseline-rate, --gain, --copy or --probe simulates one
    custom scenario instead.
    """
    from tunecheck.simulate import (
        ProbeScenario,
        Scenario,
        builtin_scenarios,
        format_results,
        run_scenario,
    )

    custom = {
        "--task-n": task_n, "--baseline-rate": baseline_rate, "--gain": gain, "--copy": copy,
        "--probe": probe or None,
    }  # fmt: skip
    given = [name for name, value in custom.items() if value is not None]
    if given and (scenario or probe_n is not None):
        raise TunecheckError(
            f"custom option(s) {', '.join(given)} describe a custom scenario; --scenario and "
            "--probe-n pick built-in ones",
            hint="use either the built-in scenarios or the custom options, not both",
        )
    if baseline_rate is not None and not 0 <= baseline_rate <= 1:
        raise TunecheckError(
            f"--baseline-rate {baseline_rate:g}: an accuracy is between 0 and 1",
            hint="e.g. --baseline-rate 0.7",
        )
    if given:
        baseline_rate = 0.5 if baseline_rate is None else baseline_rate
        copy = 0.5 if copy is None else copy
        probes = tuple(
            ProbeScenario(n=n, base_rate=b, rel_change=c, copy=cp)
            for n, b, c, cp in map(_probe_arg, probe)
        )
        chosen = [
            Scenario(
                "custom",
                f"gain {gain or 0:+.3f} on {task_n or 100} examples at {baseline_rate:g}",
                task_n=task_n or 100,
                baseline_rate=baseline_rate,
                gain=gain or 0.0,
                copy=copy,
                probes=probes,
            )
        ]
    else:
        table = builtin_scenarios(probe_n)
        unknown = [s for s in scenario if s.upper() not in table]
        if unknown:
            raise TunecheckError(
                f"unknown scenario(s) {unknown}", hint=f"choose among {', '.join(table)}"
            )
        chosen = [table[s.upper()] for s in scenario] or list(table.values())
    results = [run_scenario(s, reps=reps, seed=seed, bootstrap=bootstrap) for s in chosen]
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    console.print(format_results(results), highlight=False, markup=False)
