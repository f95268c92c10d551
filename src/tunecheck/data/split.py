"""Deterministic, optionally stratified train/val/test (or k-fold) splits, and their lock.

Determinism: rows are ordered by id (the id field, else a content hash), then
shuffled with ``numpy.random.default_rng(seed)``; so the same rows and seed give
the same split whatever the order of the input file.

Stratification: for every class ``c`` with ``n_c`` rows and every split ``s`` with
ratio ``r_s``, the split gets ``floor(n_c * r_s)`` or ``ceil(n_c * r_s)`` rows of
that class, so class proportions are kept to within one example per split.
Which splits get the rounded-up count is chosen to keep the split *sizes* as
close as possible to ``n * r_s``.

Grouping: rows whose normalised input is identical, near duplicates at ``verify``'s
threshold, and rows sharing a ``group_by`` value form groups (:mod:`tunecheck.data.groups`)
that are never split across train/val/test. Multi-row groups are placed first, largest first,
each where it overshoots its classes' per-split targets least; single rows then fill each
class's targets. Stratification stays within one example per class unless a group is too big
or too mixed to fit, which the lock's ``grouping`` records. Finally the test split is checked
exactly as ``verify`` checks it (against train and val together, so stricter); a test group
whose n-grams turn up across several training rows moves to train, until nothing is flagged:
``split`` never writes a split its own ``verify`` rejects.
"""

from __future__ import annotations

import math
import shutil
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunecheck.data.contamination import normalized_text
from tunecheck.data.formats import (
    SUFFIX,
    Quoting,
    Table,
    content_sha256,
    file_sha256,
    read_table,
    row_hash,
    write_rows,
)
from tunecheck.data.groups import Grouping, find_groups
from tunecheck.data.load import guess_input_field, input_text, missing_column, row_ids
from tunecheck.data.lock import LOCK_NAME, Lock, SplitInfo, write_lock
from tunecheck.errors import DataError

DEFAULT_RATIOS = (0.8, 0.1, 0.1)
SPLIT_NAMES = ("train", "val", "test")
SMALL_DATASET = 200


class SplitWarning(UserWarning):
    """Advice about a split (small data set, duplicate inputs, empty split)."""


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Validate ``(train, val, test)`` (or ``(train, test)``) ratios; they must sum to 1."""
    values = [float(r) for r in ratios]
    given = " + ".join(f"{v:g}" for v in values)
    if len(values) == 2:
        values = [values[0], 0.0, values[1]]
    if len(values) != 3:
        raise DataError(
            f"expected 3 ratios (train, val, test), got {len(values)}: {values}",
            where="ratios",
            hint="e.g. --ratios 0.8,0.1,0.1",
        )
    if any(v < 0 or math.isnan(v) for v in values):
        raise DataError(
            f"ratios must not be negative: {values}",
            where="ratios",
            hint="e.g. --ratios 0.8,0.1,0.1",
        )
    if abs(sum(values) - 1.0) > 1e-6:
        raise DataError(
            f"ratios must sum to 1, but {given} = {sum(values):g}",
            where="ratios",
            hint="e.g. --ratios 0.8,0.1,0.1 (train, val, test)",
        )
    if values[0] == 0 or values[2] == 0:
        raise DataError(
            f"the train and test ratios must be above 0: {values}",
            where="ratios",
            hint="e.g. --ratios 0.8,0.1,0.1",
        )
    return values[0], values[1], values[2]


def allocate(group_sizes: Sequence[int], ratios: Sequence[float]) -> list[list[int]]:
    """How many rows of each group go to each split.

    Each count is ``floor`` or ``ceil`` of ``size * ratio``; the rounded-up units
    go to the splits furthest below their overall target size.
    """
    total = sum(group_sizes)
    targets = [total * r for r in ratios]
    counts: list[list[int]] = []
    fracs: list[list[float]] = []
    for size in group_sizes:
        ideal = [round(size * r, 9) for r in ratios]
        floors = [math.floor(x) for x in ideal]
        counts.append(floors)
        fracs.append([x - f for x, f in zip(ideal, floors, strict=True)])
    allocated = [sum(c[s] for c in counts) for s in range(len(ratios))]
    for g, size in enumerate(group_sizes):
        remainder = size - sum(counts[g])
        candidates = [s for s in range(len(ratios)) if fracs[g][s] > 1e-9]
        for _ in range(remainder):
            best = max(candidates, key=lambda s: (targets[s] - allocated[s], fracs[g][s], -s))
            candidates.remove(best)
            counts[g][best] += 1
            allocated[best] += 1
    return counts


def shuffled_order(ids: Sequence[str], seed: int) -> list[int]:
    """Row indices ordered by id, then shuffled by ``seed`` (independent of file order)."""
    import numpy as np

    by_id = sorted(range(len(ids)), key=lambda i: ids[i])
    return [by_id[k] for k in np.random.default_rng(seed).permutation(len(ids))]


def assign(
    ids: Sequence[str], labels: Sequence[str] | None, ratios: Sequence[float], seed: int
) -> list[list[int]]:
    """Row indices per split (in shuffled order), stratified by ``labels`` when given."""
    shuffled = shuffled_order(ids, seed)
    if labels is None:
        groups = [shuffled]
    else:
        members: dict[str, list[int]] = {}
        for i in shuffled:
            members.setdefault(labels[i], []).append(i)
        groups = [members[k] for k in sorted(members)]
    counts = allocate([len(g) for g in groups], ratios)
    chosen: list[set[int]] = [set() for _ in ratios]
    for group, group_counts in zip(groups, counts, strict=True):
        start = 0
        for s, c in enumerate(group_counts):
            chosen[s].update(group[start : start + c])
            start += c
    # keep the shuffled order inside each split, so `limit: N` takes a random sample
    return [[i for i in shuffled if i in part] for part in chosen]


def assign_groups(
    ids: Sequence[str],
    labels: Sequence[str] | None,
    group_of: Sequence[int],
    ratios: Sequence[float],
    seed: int,
) -> tuple[list[list[int]], dict[str, Any]]:
    """Row indices per split with every group in one split, stratified where groups allow.

    Returns the parts (shuffled order) and how far stratification was loosened:
    ``max_class_deviation`` (rows) and ``classes_loosened`` (classes off by one row or more).
    """
    n = len(ids)
    shuffled = shuffled_order(ids, seed)
    labs = list(labels) if labels is not None else [""] * n
    members: dict[int, list[int]] = {}
    for i in shuffled:
        members.setdefault(group_of[i], []).append(i)
    classes = sorted(set(labs))
    class_size = Counter(labs)
    target = dict(zip(classes, allocate([class_size[c] for c in classes], ratios), strict=True))
    placed = {c: [0] * len(ratios) for c in classes}
    size_target = [n * r for r in ratios]
    size_placed = [0] * len(ratios)
    active = [s for s, r in enumerate(ratios) if r > 0]
    split_of = [-1] * n

    def put(rows: list[int], s: int) -> None:
        for i in rows:
            split_of[i] = s
            placed[labs[i]][s] += 1
        size_placed[s] += len(rows)

    multi = sorted((g for g in members.values() if len(g) > 1), key=lambda g: -len(g))
    for rows in multi:  # stable sort: equal sizes keep their shuffled order
        comp = Counter(labs[i] for i in rows)

        def cost(s: int, comp: Counter[str] = comp, size: int = len(rows)) -> tuple:
            over = sum(
                max(0, placed[c][s] + k - target[c][s]) - max(0, placed[c][s] - target[c][s])
                for c, k in comp.items()
            )
            room = (size_target[s] - size_placed[s] - size) / size_target[s]
            return (over, -room, s)

        put(rows, min(active, key=cost))
    for i in shuffled:
        if split_of[i] >= 0:
            continue
        c = labs[i]
        need = [target[c][s] - placed[c][s] for s in range(len(ratios))]
        s = max(
            active,
            key=lambda s: (need[s], (size_target[s] - size_placed[s]) / size_target[s], -s),
        )
        put([i], s)
    parts = [[i for i in shuffled if split_of[i] == s] for s in range(len(ratios))]
    return parts, stratification_report(parts, labels, ratios)


def stratification_report(
    parts: Sequence[Sequence[int]], labels: Sequence[str] | None, ratios: Sequence[float]
) -> dict[str, Any]:
    """How far each class is from its stratified share: ``max_class_deviation`` (rows) and
    ``classes_loosened`` (classes off by a whole row or more in some split)."""
    labs = list(labels) if labels is not None else [""] * sum(len(p) for p in parts)
    class_size = Counter(labs)
    counts = [Counter(labs[i] for i in part) for part in parts]
    deviation = {
        c: max(abs(counts[s][c] - n_c * r) for s, r in enumerate(ratios))
        for c, n_c in class_size.items()
    }
    loosened = [c for c, d in deviation.items() if d >= 1 - 1e-9]
    return {
        "max_class_deviation": round(max(deviation.values(), default=0.0), 3),
        "classes_loosened": len(loosened) if labels is not None else 0,
    }


def _repair_test(
    parts: list[list[int]],
    texts: list[str],
    group_of: Sequence[int],
    ngram: int,
    threshold: float,
) -> int:
    """Move test groups that ``verify`` would flag into train, until none is flagged.

    Returns the number of rows moved. Checked against train and val together: a test row's
    n-grams found anywhere in either count, which is stricter than ``verify``.
    """
    from tunecheck.data.contamination import find_contamination
    from tunecheck.examples import Example

    moved = 0
    while True:
        others = [Example(id=str(i), input=texts[i]) for i in parts[0] + parts[1]]
        test = [Example(id=str(i), input=texts[i]) for i in parts[2]]
        flagged = find_contamination(others, test, ngram=ngram, threshold=threshold)
        if not flagged:
            return moved
        bad = {group_of[int(o.test_id)] for o in flagged}
        move = [i for i in parts[2] if group_of[i] in bad]
        parts[2] = [i for i in parts[2] if group_of[i] not in bad]
        parts[0] = parts[0] + move
        moved += len(move)


def _labels(table: Table, stratify: str | None) -> list[str] | None:
    if stratify is None:
        return None
    if stratify not in table.columns:
        raise missing_column(
            table, stratify, "stratify", "pass the label column, e.g. --stratify label"
        )
    labels = []
    for i, row in enumerate(table.rows):
        value = row.get(stratify)
        if value is None or value == "":
            raise DataError(
                f"this row has no value for the stratify field {stratify!r}",
                where=table.where(i),
                hint="give every row a label, drop the rows without one, or split without --stratify",
            )
        labels.append(str(value))
    return labels


def _dedupe(table: Table, input_field: str | None) -> tuple[Table, int]:
    """``table`` without rows whose normalised input (or whole content) was seen before."""
    from tunecheck.examples import content_id

    seen: set[str] = set()
    keep: list[int] = []
    for i, row in enumerate(table.rows):
        key = normalized_text(input_text(row.get(input_field))) if input_field else ""
        key = key or content_id(row)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    dropped = len(table.rows) - len(keep)
    if not dropped:
        return table, 0
    rows = [table.rows[i] for i in keep]
    lines = [table.lines[i] for i in keep]
    return Table(
        table.path, table.fmt, rows, lines, table.columns, table.unit, table.quoting
    ), dropped


def _warn(lock_warnings: list[str], message: str) -> None:
    lock_warnings.append(message)
    warnings.warn(message, SplitWarning, stacklevel=3)


def _write_split(
    table: Table, rows: list[dict[str, Any]], folder: Path, name: str, id_field: str | None
) -> tuple[SplitInfo, list[str]]:
    target = folder / (name + SUFFIX[table.fmt])
    write_rows(rows, target, table.fmt, quoting=table.quoting, columns=table.columns or None)
    # hash what a reader will see, so `verify` right after `split` always agrees
    back = read_table(target, quoting=(table.quoting or "auto"))  # type: ignore[arg-type]
    ids = row_ids(back, id_field)
    info = SplitInfo(
        path=target.relative_to(folder).as_posix()
        if target.is_relative_to(folder)
        else str(target),
        sha256=content_sha256(back.rows),
        rows=len(back.rows),
        ids=ids,
        row_hashes=[row_hash(r) for r in back.rows],
    )
    return info, ids


def split_dataset(
    path: str | Path,
    out_dir: str | Path,
    *,
    ratios: Sequence[float] | None = None,
    seed: int = 13,
    stratify: str | None = None,
    folds: int | None = None,
    id_field: str | None = None,
    input_field: str | None = None,
    quoting: Quoting = "auto",
    dedupe: bool = False,
    group_by: str | None = None,
    group_near: bool = True,
    ngram: int = 13,
    threshold: float = 0.5,
    overwrite: bool = False,
) -> Lock:
    """Split a data file into ``train``/``val``/``test`` files and write the lock.

    Files are written to ``out_dir`` in the input's format (``train.jsonl``...,
    or folders for a ``datasets`` save) with ``tunecheck.lock.json`` beside them.
    ``ratios`` default to 0.8/0.1/0.1 and must sum to 1. ``folds=K`` writes
    ``fold_1``..``fold_K`` (each a train/test split with its own lock; fold *i*'s
    test set is the *i*-th of K disjoint, stratified parts) and an index lock
    listing them. ``id_field`` names the id column (default: ``id`` when every
    row has one, else a content hash); ``input_field`` the text checked for
    contamination (default: guessed). ``dedupe`` drops rows whose normalised
    input repeats an earlier row (identical rows would otherwise be refused as
    duplicate ids). Rows with the same normalised input, near duplicates (``group_near``, at
    ``verify``'s ``ngram``/``threshold``) and rows sharing a ``group_by`` value stay in one split;
    ``lock.grouping`` says how many groups were formed and whether they loosened
    stratification. Returns the written lock (for k-fold, the index); advice such as "fewer
    than 200 examples" is in ``lock.warnings``.
    """
    out = Path(out_dir)
    if (out / LOCK_NAME).exists() and not overwrite:
        raise DataError(
            "a lock already exists here; re-splitting would replace the locked test set",
            where=str(out / LOCK_NAME),
            hint="choose another --out folder, or pass --force if you really want a new test set",
        )
    if folds is not None and ratios is not None:
        raise DataError(
            "give either ratios or folds, not both",
            where="ratios",
            hint="k-fold uses 1/K of the data as each fold's test set",
        )
    if folds is not None and folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}", where="folds")
    split_ratios = check_ratios(ratios if ratios is not None else DEFAULT_RATIOS)
    table = read_table(path, quoting=quoting)
    if (
        id_field is None
        and "id" in table.columns
        and all(r.get("id") not in (None, "") for r in table.rows)
    ):
        id_field = "id"
    if id_field is not None and id_field not in table.columns:
        raise missing_column(
            table,
            id_field,
            "id",
            "pass an existing column to --id-field, or leave it out to use content hashes",
        )
    if input_field is None:
        input_field = guess_input_field(table, exclude={id_field, stratify})
    elif input_field not in table.columns:
        raise missing_column(
            table,
            input_field,
            "input",
            "pass the column that holds the model's input to --input-field",
        )
    notes: list[str] = []
    dropped = 0
    if dedupe:
        table, dropped = _dedupe(table, input_field)
        if dropped:
            _warn(notes, f"dropped {dropped} rows whose input repeats an earlier row (--dedupe)")
    try:
        ids = row_ids(table, id_field)
    except DataError as err:
        if not dedupe:
            err.hint = (
                err.hint or ""
            ) + "; or pass --dedupe to keep only the first of repeated inputs"
        raise
    labels = _labels(table, stratify)

    n = len(table.rows)
    if group_by is not None and group_by not in table.columns:
        raise missing_column(
            table, group_by, "group_by", "pass the column that names each row's group"
        )
    texts = [input_text(r.get(input_field)) if input_field else "" for r in table.rows]
    grouping = find_groups(
        texts,
        near=group_near and input_field is not None,
        ngram=ngram,
        threshold=threshold,
        keys=[r.get(group_by) for r in table.rows] if group_by else None,
    )

    out.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "source": {
            "path": str(path),
            "sha256": file_sha256(path),
            "format": table.fmt,
            "rows": n + dropped,
            "dropped_duplicates": dropped,
        },
        "seed": seed,
        "stratify": stratify,
        "id_field": id_field,
        "input_field": input_field,
        "format": table.fmt,
        "quoting": table.quoting,
    }
    from tunecheck import __version__

    def place(split_ratios: Sequence[float]) -> list[list[int]]:
        info: dict[str, Any] = {}
        if grouping.multi_row_groups == 0:
            parts = assign(ids, labels, split_ratios, seed)
        else:
            parts, info = assign_groups(ids, labels, grouping.group_of, split_ratios, seed)
        moved = 0
        if folds is None and group_near and input_field is not None:
            moved = _repair_test(parts, texts, grouping.group_of, ngram, threshold)
            if moved:
                rank = {i: k for k, i in enumerate(shuffled_order(ids, seed))}
                parts = [sorted(p, key=rank.__getitem__) for p in parts]
                info = stratification_report(parts, labels, split_ratios)
        common["grouping"] = _grouping_record(grouping, group_by, group_near, info, moved)
        if grouping.multi_row_groups or moved:
            _note_grouping(notes, grouping, info, moved, stratify)
        return parts

    if folds is not None:
        if folds > n:
            raise DataError(f"--folds {folds} is more than the {n} examples", where="folds")
        parts = place([1.0 / folds] * folds)
        fold_locks = []
        for k in range(folds):
            folder = out / f"fold_{k + 1}"
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            test_idx = parts[k]
            train_idx = [i for j, p in enumerate(parts) if j != k for i in p]
            splits: dict[str, SplitInfo] = {}
            for name, idx in (("train", train_idx), ("test", test_idx)):
                splits[name], _ = _write_split(
                    table, [table.rows[i] for i in idx], folder, name, id_field
                )
            fold_lock = Lock(
                ratios=None,
                splits=splits,
                tool_version=__version__,
                fold=k + 1,
                n_folds=folds,
                **common,
            )
            fold_lock.source = {**common["source"], "path": _relative(path, folder)}
            write_lock(fold_lock, folder / LOCK_NAME)
            fold_locks.append(f"fold_{k + 1}/{LOCK_NAME}")
        index = Lock(
            ratios=None,
            splits={},
            tool_version=__version__,
            n_folds=folds,
            folds=fold_locks,
            warnings=notes,
            **common,
        )
        index.source = {**common["source"], "path": _relative(path, out)}
        write_lock(index, out / LOCK_NAME)
        return index

    parts = place(split_ratios)
    if n < SMALL_DATASET:
        # the count the split really got (rounding and stratification move it off n * ratio)
        _warn(
            notes,
            f"only {n} examples: a {split_ratios[2]:.0%} test split ({len(parts[2])} "
            f"example{'' if len(parts[2]) == 1 else 's'}) "
            "is too small to detect most differences; consider k-fold cross-validation with "
            "--folds 5",
        )
    splits = {}
    for name, idx in zip(SPLIT_NAMES, parts, strict=True):
        stale = out / (name + SUFFIX[table.fmt])
        if not idx:
            if name == "test" or name == "train":
                raise DataError(
                    f"{n} examples leave the {name} split empty with ratios {list(split_ratios)}",
                    where=str(table.path),
                    hint="use more data, larger ratios, or --folds K",
                )
            if split_ratios[1] > 0:
                _warn(
                    notes,
                    f"the {name} split is empty ({n} examples x {split_ratios[1]:g}); no {name} file written",
                )
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
            continue
        splits[name], _ = _write_split(table, [table.rows[i] for i in idx], out, name, id_field)
    lock = Lock(
        ratios=list(split_ratios), splits=splits, tool_version=__version__, warnings=notes, **common
    )
    lock.source = {**common["source"], "path": _relative(path, out)}
    write_lock(lock, out / LOCK_NAME)
    return lock


def _grouping_record(
    grouping: Grouping,
    group_by: str | None,
    group_near: bool,
    info: dict[str, Any],
    moved: int,
) -> dict[str, Any]:
    """What the lock records about groups (``lock.grouping``)."""
    return {
        **grouping.summary(),
        "group_by": group_by,
        "near_duplicates": group_near,
        "max_class_deviation": info.get("max_class_deviation"),
        "classes_loosened": info.get("classes_loosened", 0),
        "rows_moved_to_train": moved,
    }


def _note_grouping(
    notes: list[str], grouping: Grouping, info: dict[str, Any], moved: int, stratify: str | None
) -> None:
    text = (
        f"{grouping.rows_in_multi_row_groups} rows form {grouping.multi_row_groups} groups "
        f"(same text, near duplicates{' or the same group-by value' if grouping.links.get('same_key') else ''}) "
        f"kept in one split each; {grouping.n_groups} groups in all"
    )
    if stratify and info.get("classes_loosened"):
        text += (
            f"; to keep them whole, {info['classes_loosened']} classes are off their "
            f"stratified share by up to {info['max_class_deviation']:g} rows"
        )
    if moved:
        text += (
            f"; {moved} test rows moved to train because their n-grams occur across several "
            "training rows (verify would flag them)"
        )
    _warn(notes, text)


def _relative(path: str | Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (informational: the source is not needed to verify)."""
    import os

    try:
        return Path(os.path.relpath(Path(path).resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(Path(path).resolve())
