"""``tunecheck demo``: the whole before-and-after workflow on the embedded model."""

from __future__ import annotations

from pathlib import Path

import typer

from tunecheck.cli import app, console, print_json


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(
        Path("tunecheck-demo"), "--out", help="Folder for data, adapter, spec and reports."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Smaller data and training (about 3 minutes; used by the tests)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print where everything was written, as JSON."
    ),
) -> None:
    """Fine-tune the embedded SmolLM2-135M on a generated task and prove (or disprove) the gain.

    Generates the task data, splits and locks it, fine-tunes a LoRA adapter with TRL on the
    CPU while TunecheckCallback measures the task metric, diagnoses the curves, evaluates
    base zero-shot, base + best prompt and the fine-tune on the locked test split plus the
    capability probes, and writes the verdict and reports. Re-running reuses the cached
    adapter and generations.
    """
    from tunecheck.demo.pipeline import run_demo

    result = run_demo(out, quick=quick, console=console)
    if as_json:
        print_json(
            {
                "out_dir": str(result.out_dir),
                "run_id": result.run_id,
                "decision": result.decision,
                "timings": result.timings,
                "files": result.files,
            }
        )
