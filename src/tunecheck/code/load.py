"""Load code problems from a file (or a locked split) as examples ready for pass@k."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from tunecheck.code.problems import CodeFormat, code_examples, default_fields, detect_format
from tunecheck.core.config import FieldMap, FieldMapLike, as_field_map
from tunecheck.examples import Example

FormatChoice = Literal["auto", "humaneval", "mbpp", "plain"]


def code_field_map(
    columns: list[str], fmt: FormatChoice, where: str
) -> tuple[CodeFormat, FieldMap]:
    """The format (detected when ``auto``) and its field mapping for a file's columns."""
    found = detect_format(columns, where) if fmt == "auto" else fmt
    return found, as_field_map(default_fields(found, columns))


def load_code_examples(
    path: str | Path,
    fmt: FormatChoice = "auto",
    *,
    fields: FieldMapLike | None = None,
    show_tests: bool = True,
) -> list[Example]:
    """Every problem of a HumanEval, MBPP or plain file; errors name the example at fault."""
    from tunecheck.data.formats import read_table
    from tunecheck.data.load import examples_from_table

    table = read_table(path)
    found, mapping = code_field_map(table.columns, fmt, str(path))
    examples = examples_from_table(table, fields or mapping)
    return code_examples(examples, found, str(path), show_tests=show_tests)


def load_locked_code_examples(
    lock: str | Path,
    split: str,
    fmt: FormatChoice = "auto",
    *,
    fields: FieldMapLike | None = None,
    show_tests: bool = True,
    allow_overlap: bool = False,
    near_duplicate_threshold: float = 0.5,
) -> tuple[list[Example], object]:
    """Like :func:`load_code_examples` for a locked split (the lock is verified first)."""
    from tunecheck.data.formats import read_table
    from tunecheck.data.lock import load_locked_split, read_lock

    lk = read_lock(lock)
    split_path = lk.split_path(split)
    found, mapping = code_field_map(read_table(split_path).columns, fmt, str(split_path))
    mapping = mapping if fields is None else as_field_map(fields)
    examples, report = load_locked_split(
        lock,
        split=split,
        fields=mapping.updated(id=lk.id_field),
        allow_overlap=allow_overlap,
        near_duplicate_threshold=near_duplicate_threshold,
    )
    return code_examples(examples, found, str(split_path), show_tests=show_tests), report
