"""Verbs that prepare a run: ``init`` (write a spec) and ``check`` (pre-flight a spec)."""

from __future__ import annotations

from pathlib import Path

import typer

from tunecheck.cli import app, console, err_console, print_json


@app.command("init")
def init_cmd(
    data: Path = typer.Option(
        ..., "--data", help="The folder written by `tunecheck split` (holds tunecheck.lock.json)."
    ),
    base: str = typer.Option(
        ..., "--base", help="Base model: a transformers folder, .gguf file, hub id or BACKEND:REF."
    ),
    finetuned: str = typer.Option(
        ...,
        "--finetuned",
        help="Fine-tuned model, or a LoRA adapter folder (applied over --base).",
    ),
    task_type: str | None = typer.Option(
        None,
        "--task-type",
        help="classification, extraction, generation or code [default: read from the data].",
    ),
    out: Path = typer.Option(
        Path("tunecheck.yaml"), "--out", "-o", help="Where to write the spec."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing spec."),
    as_json: bool = typer.Option(False, "--json", help="Print what was decided, as JSON."),
) -> None:
    """Write a commented tunecheck.yaml: three contenders, parser and metrics for the task, the
    lock and the default probes. Refuses to overwrite an existing file without --force."""
    from tunecheck.init_spec import write_spec
    from tunecheck.preflight import preflight
    from tunecheck.spec import load_spec

    plan = write_spec(
        data=data, base=base, finetuned=finetuned, task_type=task_type, out=out, force=force
    )
    problems = preflight(load_spec(out)).problems
    if as_json:
        print_json(
            {
                "spec": str(out),
                "task_type": plan.task_type,
                "fields": plan.fields,
                "parser": plan.parser,
                "metrics": plan.metrics,
                "contenders": [{"name": c["name"], "model": c["model"]} for c in plan.contenders],
                "notes": plan.notes,
                "problems": [str(p) for p in problems],
            }
        )
        return
    console.print(
        f"wrote {out} ({plan.task_type} task: metrics {', '.join(plan.metrics)}, "
        f"parser {plan.parser['type']})"
    )
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")
    if problems:
        err_console.print(
            f"[yellow]the spec is written, but {len(problems)} thing(s) need attention before "
            "`tunecheck run`:[/]"
        )
        for p in problems:
            err_console.print(f"  - {p}", highlight=False)
    console.print(
        "next: replace the base+prompt placeholder with your production prompt, then "
        f"`tunecheck run {out}`"
    )


@app.command("check")
def check_cmd(
    spec_path: Path = typer.Argument(Path("tunecheck.yaml"), help="The eval spec."),
    as_json: bool = typer.Option(False, "--json", help="Print the problems as JSON."),
) -> None:
    """Check a spec without loading any model: every problem at once (exit 2), or ok (exit 0)."""
    from tunecheck.preflight import preflight
    from tunecheck.spec import load_spec

    problems = preflight(load_spec(spec_path)).problems
    if as_json:
        print_json(
            {
                "ok": not problems,
                "problems": [
                    {"where": p.where, "field": p.field, "message": p.message, "hint": p.hint}
                    for p in problems
                ],
            }
        )
    elif not problems:
        console.print(f"{spec_path}: ok (no model was loaded; models are checked when they load)")
    else:
        err_console.print(f"[bold red]{spec_path}: {len(problems)} problem(s)[/]")
        for p in problems:
            err_console.print(f"  - {p}", highlight=False)
    if problems:
        raise typer.Exit(2)
