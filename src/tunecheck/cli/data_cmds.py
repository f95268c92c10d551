"""Verbs for data: ``split`` and ``verify``."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from tunecheck.cli import app, console, err_console, print_json
from tunecheck.errors import DataError


def _parse_ratios(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise DataError(
            f"cannot read ratios {text!r}",
            where="--ratios",
            hint="three numbers that sum to 1, e.g. --ratios 0.8,0.1,0.1",
        ) from None


@app.command("split")
def split_cmd(
    data: Path = typer.Argument(
        ...,
        help="Data file (.jsonl, .json, .csv, .tsv, .parquet) or a `datasets` save_to_disk folder.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for train/val/test and tunecheck.lock.json."
    ),
    stratify: str | None = typer.Option(
        None, "--stratify", help="Label column: keep class proportions in every split."
    ),
    seed: int = typer.Option(
        13, "--seed", help="Random seed (same seed + same rows = same split)."
    ),
    ratios: str | None = typer.Option(
        None, "--ratios", help="train,val,test fractions summing to 1 [default: 0.8,0.1,0.1]."
    ),
    folds: int | None = typer.Option(
        None,
        "--folds",
        help="K-fold cross-validation instead of one split (recommended below 200 examples).",
    ),
    id_field: str | None = typer.Option(
        None,
        "--id-field",
        help="Column with unique ids [default: `id` when present, else a content hash].",
    ),
    input_field: str | None = typer.Option(
        None,
        "--input-field",
        help="Column with the model input, checked for contamination [default: guessed].",
    ),
    dedupe: bool = typer.Option(
        False, "--dedupe", help="Drop rows whose input repeats an earlier row."
    ),
    group_by: str | None = typer.Option(
        None,
        "--group-by",
        help="Column naming each row's group (conversation id, document id): a group stays in one split.",
    ),
    group_near: bool = typer.Option(
        True,
        "--group-near/--no-group-near",
        help="Keep near duplicates (verify's 13-gram test) in one split; rows with the same text always are.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing lock in --out (a new test set)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the lock as JSON."),
) -> None:
    """Split DATA into train/val/test (or K folds) and lock the test set."""
    from tunecheck.data import split_dataset

    with warnings.catch_warnings():
        # the advice is printed below (and kept in the lock object), not as Python warnings
        warnings.simplefilter("ignore")
        lock = split_dataset(
            data,
            out,
            ratios=_parse_ratios(ratios),
            seed=seed,
            stratify=stratify,
            folds=folds,
            id_field=id_field,
            input_field=input_field,
            dedupe=dedupe,
            group_by=group_by,
            group_near=group_near,
            overwrite=force,
        )
    if as_json:
        print_json({**lock.to_dict(), "lock_path": str(lock.path), "warnings": lock.warnings})
        return
    for note in lock.warnings:
        err_console.print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)
    console.print(
        f"[bold]split[/] {data} ({lock.source['rows']} rows, seed {lock.seed}"
        + (f", stratified by {lock.stratify!r}" if lock.stratify else "")
        + ")",
        highlight=False,
        soft_wrap=True,
    )
    if lock.folds:
        from tunecheck.data import read_lock

        for f in lock.folds:
            fold = read_lock(lock.folder / f)
            sizes = ", ".join(f"{name} {info.rows}" for name, info in fold.splits.items())
            console.print(f"  {Path(f).parent}: {sizes}", highlight=False, soft_wrap=True)
    else:
        for name, info in lock.splits.items():
            console.print(
                f"  {name:5} {info.rows:>7} rows  {out / info.path}",
                highlight=False,
                soft_wrap=True,
            )
    console.print(
        f"[green]locked[/] {lock.path}  (check it with `tunecheck verify {lock.path}`)",
        highlight=False,
        soft_wrap=True,
    )


@app.command("verify")
def verify_cmd(
    lock: Path = typer.Argument(..., help="tunecheck.lock.json (or its folder)."),
    allow_overlap: bool = typer.Option(
        False, "--allow-overlap", help="Accept test examples that overlap training data (recorded)."
    ),
    threshold: float = typer.Option(
        0.5,
        "--threshold",
        help="Near-duplicate: share of a test example's n-grams seen in training.",
    ),
    ngram: int = typer.Option(13, "--ngram", help="Words per n-gram for near-duplicate detection."),
    input_field: str | None = typer.Option(
        None,
        "--input-field",
        help="Column checked for overlap [default: the one recorded in the lock].",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check that the test split is unchanged since locking and does not overlap the training data."""
    from tunecheck.data import verify_lock
    from tunecheck.spec import FieldMap

    fields = FieldMap(input=input_field) if input_field else None
    report = verify_lock(
        lock,
        allow_overlap=allow_overlap,
        near_duplicate_threshold=threshold,
        ngram=ngram,
        fields=fields,
    )
    from tunecheck.code.verify import check_lock_references

    # code problems: every reference solution must pass its own tests
    code = check_lock_references(lock)
    if as_json:
        print_json({**report.to_dict(), **({"code_references": code.to_dict()} if code else {})})
        if code:
            code.raise_for_failures()
        return
    reports = report.folds if report.folds is not None else [report]
    for r in reports:
        status = ", ".join(f"{k} {v}" for k, v in r.splits.items())
        console.print(
            f"[green]ok[/] {r.lock_path}: test split unchanged ({r.test_rows} rows, sha256 {r.test_sha256[:12]}…); {status}",
            highlight=False,
            soft_wrap=True,
        )
    if report.overlaps:
        console.print(
            f"[yellow]override:[/] {report.exact} exact and {report.near} near-duplicate test example(s) overlap "
            f"training data, accepted with --allow-overlap (recorded):",
            highlight=False,
            soft_wrap=True,
        )
        for o in report.overlaps[:20]:
            console.print(
                f"  {o.kind:5} {o.score:.2f}  test {o.test_id} ~ {o.split} {o.other_id}",
                highlight=False,
                soft_wrap=True,
            )
        if len(report.overlaps) > 20:
            console.print(f"  … and {len(report.overlaps) - 20} more (--json lists all)")
    else:
        console.print(
            f"[green]ok[/] no overlap between test and training data (exact, or >= {threshold:.0%} of {ngram}-word n-grams)",
            highlight=False,
            soft_wrap=True,
        )
    if code is not None:
        code.raise_for_failures()
        console.print(
            f"[green]ok[/] {code.checked} reference solution(s) pass their tests"
            + (
                f" ({code.without_reference} problem(s) without one)"
                if code.without_reference
                else ""
            ),
            highlight=False,
            soft_wrap=True,
        )
