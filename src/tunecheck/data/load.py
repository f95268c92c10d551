"""Rows to :class:`~tunecheck.examples.Example`: field mapping and stable ids."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from tunecheck.core.config import FieldMapLike, as_field_map
from tunecheck.data.formats import Quoting, Table, read_table
from tunecheck.errors import DataError
from tunecheck.examples import Example, content_id


def missing_column(table: Table, name: str, role: str, hint: str | None = None) -> DataError:
    """The error for a mapped column the file does not have, with a close match if any."""
    close = difflib.get_close_matches(name, table.columns, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return DataError(
        f"the {role} field {name!r} is not a column of this file (columns: {', '.join(table.columns)})",
        where=str(table.path),
        hint=guess
        + (
            hint
            or f"map the right column, e.g. --{role}-field NAME or `fields: {{{role}: NAME}}` in the spec"
        ),
    )


def row_ids(table: Table, id_field: str | None) -> list[str]:
    """The id of every row: the ``id_field`` value, else a hash of the row's content.

    Duplicate ids are refused with the ids and the lines they appear on.
    """
    ids: list[str] = []
    if id_field is not None:
        for i, row in enumerate(table.rows):
            value = row.get(id_field)
            if value is None or value == "":
                raise DataError(
                    f"the id field {id_field!r} is missing or empty",
                    where=table.where(i),
                    hint="give every row an id, or drop the id mapping to use content hashes",
                )
            ids.append(str(value))
    else:
        ids = [content_id(row) for row in table.rows]
    seen: dict[str, list[int]] = {}
    for i, rid in enumerate(ids):
        seen.setdefault(rid, []).append(i)
    dupes = {rid: idx for rid, idx in seen.items() if len(idx) > 1}
    if dupes:
        shown = "; ".join(
            f"{rid!r} at {table.unit}s {', '.join(str(table.lines[i]) for i in idx)}"
            for rid, idx in list(dupes.items())[:10]
        )
        more = f" (and {len(dupes) - 10} more)" if len(dupes) > 10 else ""
        what = f"id field {id_field!r}" if id_field else "content (identical rows)"
        raise DataError(
            f"{len(dupes)} duplicate id(s) by {what}: {shown}{more}",
            where=str(table.path),
            hint="ids must be unique: fix or drop the repeated rows"
            + ("" if id_field else " (identical rows get identical content-hash ids)"),
        )
    return ids


def resolve_id_field(table: Table, fields: FieldMapLike | None) -> str | None:
    """The id column to use: the mapped one when the file has it.

    The default mapping (``id``) falls back to content hashes when the file has no
    ``id`` column; an explicitly mapped id column must exist.
    """
    fields = as_field_map(fields)
    if fields.id is None:
        return None
    if fields.id in table.columns:
        return fields.id
    if "id" in fields.given:
        raise missing_column(table, fields.id, "id")
    return None


def examples_from_table(
    table: Table, fields: FieldMapLike | None = None, ids: list[str] | None = None
) -> list[Example]:
    """Map the rows of ``table`` to examples (see :func:`load_examples`)."""
    fields = as_field_map(fields)
    if fields.input not in table.columns:
        raise missing_column(table, fields.input, "input")
    id_field = resolve_id_field(table, fields)
    ref_field = fields.reference
    if ref_field is not None and ref_field not in table.columns:
        if "reference" in fields.given:
            raise missing_column(table, ref_field, "reference")
        ref_field = None  # the default `reference` column is optional
    if fields.label is not None and fields.label not in table.columns:
        raise missing_column(table, fields.label, "label")
    slice_fields = [fields.slices] if isinstance(fields.slices, str) else list(fields.slices or [])
    for s in slice_fields:
        if s not in table.columns:
            raise missing_column(table, s, "slices")
    if ids is None:
        ids = row_ids(table, id_field)
    used = {fields.input, id_field, ref_field, fields.label, *slice_fields} - {None}
    examples: list[Example] = []
    for i, row in enumerate(table.rows):
        for name, role in (
            (fields.input, "input"),
            (ref_field, "reference"),
            (fields.label, "label"),
        ):
            if name is not None and name not in row:
                raise DataError(
                    f"this row has no {role} field {name!r}",
                    where=table.where(i),
                    hint=f"add {name!r} to every row",
                )
        value = row[fields.input]
        if not isinstance(value, (str, list)):
            if value is None:
                raise DataError(
                    f"the input field {fields.input!r} is empty (null)",
                    where=table.where(i),
                    hint="every example needs an input",
                )
            value = str(value)
        label = row.get(fields.label) if fields.label else None
        slices: list[str] = []
        for s in slice_fields:
            v = row.get(s)
            if isinstance(v, list):
                slices.extend(str(x) for x in v)
            elif v not in (None, ""):
                slices.append(str(v))
        examples.append(
            Example(
                id=ids[i],
                input=value,
                # JSON-looking references stay strings: the metrics parse them
                reference=row.get(ref_field) if ref_field else None,
                label=None if label is None else str(label),
                slices=tuple(slices),
                meta={k: v for k, v in row.items() if k not in used},
            )
        )
    return examples


def load_examples(
    path: str | Path, fields: FieldMapLike | None = None, *, quoting: Quoting = "auto"
) -> list[Example]:
    """Load a data file as examples.

    ``fields`` maps columns to roles (default: ``input``, ``reference``, ``id``): a
    :class:`~tunecheck.core.FieldMap` or the spec's ``FieldMap``.
    Ids come from the id column, else :func:`~tunecheck.examples.content_id` of
    the row; duplicates are refused. Columns not mapped go to ``Example.meta``.
    """
    return examples_from_table(read_table(path, quoting=quoting), fields)


def input_text(value: Any) -> str:
    """The text of an input: plain text, or the contents of chat messages joined."""
    if isinstance(value, list):
        return "\n".join(
            str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in value
        )
    return "" if value is None else str(value)


_INPUT_NAMES = (
    "input",
    "text",
    "prompt",
    "question",
    "query",
    "instruction",
    "source",
    "sentence",
    "content",
    "sms",
    "message",
)


def guess_input_field(table: Table, exclude: set[str | None] = frozenset()) -> str | None:  # type: ignore[assignment]
    """The column that most likely holds the input text (for contamination checks).

    A conventional name wins (``input``, ``text``, ``prompt``...); otherwise the
    string column with the longest average value.
    """
    lowered = {c.lower(): c for c in table.columns if c not in exclude}
    for name in _INPUT_NAMES:
        if name in lowered:
            return lowered[name]
    best, best_len = None, 0.0
    sample = table.rows[:500]
    for col in table.columns:
        if col in exclude:
            continue
        values = [r.get(col) for r in sample]
        texts = [v for v in values if isinstance(v, str)]
        if len(texts) != len(values):
            continue
        mean = sum(len(v) for v in texts) / max(len(texts), 1)
        if mean > best_len:
            best, best_len = col, mean
    return best
