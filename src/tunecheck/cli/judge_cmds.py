"""``tunecheck judge ...``: calibrate an LLM judge against people.

* ``judge agreement FILE.jsonl`` - accuracy, Cohen's and Fleiss' kappa, position
  consistency, tie shares and verbosity, each with a 95% bootstrap interval;
* ``judge pandalm TESTSET VERDICTS -o OUT.jsonl`` - convert the PandaLM test set and one
  judge's stored verdicts into that input format.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tunecheck.cli import app, console, print_json

if TYPE_CHECKING:
    from tunecheck.judge.agreement import Estimate

judge_app = typer.Typer(help="Calibrate an LLM judge against human labels.", no_args_is_help=True)
app.add_typer(judge_app, name="judge")


def _fmt(est: Estimate | None) -> str:
    if est is None or est.value is None:
        return "n/a"
    ci = (
        f" [{est.ci_low:.3f}, {est.ci_high:.3f}]"
        if est.ci_low is not None and est.ci_high is not None
        else ""
    )
    return f"{est.value:.3f}{ci}  (n={est.n})"


@judge_app.command("agreement")
def agreement_cmd(
    path: Path = typer.Argument(..., help="JSON lines: id, human, judge[, judge_swapped]"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    resamples: int = typer.Option(2000, "--resamples", min=100, help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    """How often the judge agrees with people, with 95% bootstrap intervals."""
    from tunecheck.judge.agreement import agreement_file

    result = agreement_file(path, resamples=resamples, seed=seed)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(f"[bold]judge vs people[/] · {path}", highlight=False)
    console.print(
        f"rows {result.n} · used {result.n_used} · unlabelled {result.n_unlabelled} · "
        f"judge errors {result.n_judge_errors} · "
        f"no human majority {result.n_no_majority} · annotators per row up to {result.annotators}",
        highlight=False,
    )
    lines = [
        ("accuracy vs human majority", result.accuracy),
        ("macro-F1 (a / b / tie)", result.macro_f1),
        ("Cohen's kappa, judge vs majority", result.cohen_kappa),
        ("Fleiss' kappa among annotators", result.fleiss_kappa),
        ("position consistency", result.position_consistency),
        ("judge tie share", result.judge_tie_share),
        ("human tie share", result.human_tie_share),
        ("judge prefers the longer output", result.judge_prefers_longer),
        ("people prefer the longer output", result.humans_prefer_longer),
    ]
    for label, est in lines:
        if est is not None:
            console.print(f"  {label:<34} {_fmt(est)}", highlight=False)
    console.print(f"[dim]95% bootstrap intervals, {result.resamples} resamples, seed {result.seed}. "
                  f"{result.tie_rule}.[/]", highlight=False)  # fmt: skip


@judge_app.command("export")
def export_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    out: Path = typer.Option(..., "--out", "-o", help="Write the rows here (JSONL)."),
    task: str | None = typer.Option(None, "--task", help="Only this task."),
    store: str | None = typer.Option(
        None, "--store", envvar="TUNECHECK_STORE", help="SQLAlchemy URL of the run store."
    ),
) -> None:
    """Write a run's pairwise judgements as rows for people to label (`human`)."""
    from tunecheck.errors import TunecheckError
    from tunecheck.judge.export import export_rows
    from tunecheck.judge.pandalm import write_jsonl
    from tunecheck.store import open_store

    run = open_store(store).get_run(run_id)
    if not run.result:
        raise TunecheckError(f"run {run.id} has no stored result (status: {run.status})")
    rows = export_rows(run.result, task=task)
    write_jsonl(rows, out)
    console.print(
        f"{len(rows)} rows -> {out}; fill in `human` (a = candidate, b = baseline, tie), then "
        f"`tunecheck judge agreement {out}`",
        highlight=False,
    )


@judge_app.command("pandalm")
def pandalm_cmd(
    testset: Path = typer.Argument(..., help="PandaLM testset-v1.json (three annotators)"),
    verdicts: Path = typer.Argument(..., help="a judge's stored verdicts (gpt-3.5 or pandalm-7b)"),
    out: Path = typer.Option(..., "--out", "-o", help="Write the agreement rows here (JSONL)."),
    garbage: str = typer.Option(
        "tie",
        "--garbage",
        help="GPT answers PandaLM could not parse: 'tie' (as PandaLM) or 'error'.",
    ),
) -> None:
    """Convert the PandaLM test set + one judge's verdicts into `judge agreement` rows."""
    from tunecheck.errors import TunecheckError
    from tunecheck.judge.pandalm import convert, write_jsonl

    if garbage not in ("tie", "error"):
        raise TunecheckError(f"--garbage must be tie or error, not {garbage!r}")
    rows = convert(testset, verdicts, garbage=garbage)  # type: ignore[arg-type]
    write_jsonl(rows, out)
    console.print(f"{len(rows)} rows -> {out}", highlight=False)
