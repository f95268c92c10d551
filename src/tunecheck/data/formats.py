"""Reading and writing rows in every supported format.

Formats: JSONL (``.jsonl``/``.ndjson``), a JSON array of objects (``.json``), CSV,
TSV, Parquet (pyarrow) and a Hugging Face ``datasets`` folder made by
``save_to_disk``. Every error is a :class:`~tunecheck.errors.DataError` naming the
file and the line (or row) at fault.

TSV quoting: many real TSV files (the UCI SMS Spam Collection among them) do not
quote at all, and a field that merely *starts* with ``"`` would swallow the
following lines under CSV quoting rules. ``quoting="auto"`` (the default) parses
strictly with quoting first and falls back to no quoting when that fails or when
the unquoted reading is the only one that gives every line the header's width.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tunecheck.errors import DataError

Format = Literal["jsonl", "json", "csv", "tsv", "parquet", "hf"]
Quoting = Literal["auto", "minimal", "none"]
# the csv module's QUOTE_* constants, as the type its reader and writer accept
_CsvQuoting = Literal[0, 1, 2, 3]

_EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SUFFIX: dict[str, str] = {
    "jsonl": ".jsonl",
    "json": ".json",
    "csv": ".csv",
    "tsv": ".tsv",
    "parquet": ".parquet",
    "hf": "",
}
_SUPPORTED = "JSONL (.jsonl), JSON array (.json), CSV (.csv), TSV (.tsv), Parquet (.parquet) or a `datasets` save_to_disk folder"


@dataclass
class Table:
    """Rows read from one file, with where each came from (for error messages).

    ``lines[i]`` is the 1-based line of row ``i`` in a text file, or its 1-based
    row number for Parquet and ``datasets`` folders (``unit`` says which).
    ``quoting`` is the CSV/TSV quoting that was detected, so splits are written
    back the same way.
    """

    path: Path
    fmt: Format
    rows: list[dict[str, Any]]
    lines: list[int]
    columns: list[str] = field(default_factory=list)
    unit: str = "line"
    quoting: str | None = None

    def where(self, i: int) -> str:
        """``file:line`` (or ``file, row N``) of row ``i``."""
        if self.unit == "line":
            return f"{self.path}:{self.lines[i]}"
        return f"{self.path}, row {self.lines[i]}"


def detect_format(path: str | Path) -> Format:
    """The format of ``path``, from its extension (a folder is a ``datasets`` save)."""
    path = Path(path)
    if path.is_dir():
        return "hf"
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"unknown data format {path.suffix or '(no extension)'!r}",
            where=str(path),
            hint=f"use {_SUPPORTED}",
        )
    return fmt


def read_rows(path: str | Path, *, quoting: Quoting = "auto") -> list[dict[str, Any]]:
    """Read every row of a data file as a dict (see :func:`read_table` for details)."""
    return read_table(path, quoting=quoting).rows


def read_table(path: str | Path, *, quoting: Quoting = "auto") -> Table:
    """Read a data file with the line of every row; errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            "data file not found",
            where=str(path),
            hint="check the path (relative paths are resolved against the current folder)",
        )
    fmt = detect_format(path)
    if fmt == "hf":
        table = _read_hf(path)
    elif fmt == "parquet":
        table = _read_parquet(path)
    else:
        text = _decode(path)
        if not text.strip():
            raise DataError(
                "the file is empty", where=str(path), hint="point at a file that holds examples"
            )
        if fmt == "jsonl":
            table = _read_jsonl(path, text)
        elif fmt == "json":
            table = _read_json(path, text)
        else:
            table = _read_delimited(path, text, fmt, quoting)
    if not table.rows:
        raise DataError(
            "the file holds no rows", where=str(path), hint="point at a file that holds examples"
        )
    return table


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        # utf-8-sig: a byte-order mark added by an editor is not part of the data
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        bad = data[err.start : err.end].hex(" ")
        raise DataError(
            f"not UTF-8: byte(s) {bad} at column {col} cannot be decoded",
            where=f"{path}:{line}",
            hint="re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)",
        ) from None


def jsonl_objects(
    path: str | Path, *, what: str, hint: str | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, object)`` for each non-blank line of a JSON-lines side file (labels,
    verdicts...), ``where`` being ``FILE:LINE``; an unreadable file, a line that is not JSON or
    not an object is a :class:`DataError` naming it. ``what`` names the file's content in the
    error; ``hint`` says how to get a good file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(
            f"cannot read {what}: {err.strerror or err}", where=str(path), hint=hint
        ) from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON: {err.msg}", where=where) from None
        if not isinstance(obj, dict):
            raise DataError("each line must be a JSON object", where=where)
        yield where, obj


def _read_jsonl(path: Path, text: str) -> Table:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"not valid JSON: {err.msg} (column {err.colno})",
                where=f"{path}:{n}",
                hint="each line of a JSONL file must be one complete JSON object",
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"expected a JSON object, got {type(value).__name__}",
                where=f"{path}:{n}",
                hint='each line must look like {"input": ..., "reference": ...}',
            )
        rows.append(value)
        lines.append(n)
    return Table(path, "jsonl", rows, lines, columns=_columns(rows))


def _read_json(path: Path, text: str) -> Table:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"not valid JSON: {err.msg} (column {err.colno})", where=f"{path}:{err.lineno}"
        ) from None
    if isinstance(value, dict):
        # {"data": [...]} / {"rows": [...]}: the one list of objects inside
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            value = lists[0]
    if not isinstance(value, list):
        raise DataError(
            "a .json data file must hold a list of objects",
            where=str(path),
            hint="use JSONL (one object per line) or a JSON array [{...}, {...}]",
        )
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise DataError(
                f"item {i + 1} is {type(item).__name__}, expected an object", where=str(path)
            )
    return Table(
        path, "json", value, list(range(1, len(value) + 1)), columns=_columns(value), unit="row"
    )


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _parse_delimited(
    text: str, delimiter: str, quoting: _CsvQuoting
) -> list[tuple[int, list[str]]]:
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True
    )
    out = []
    start = 1
    for record in reader:
        out.append((start, record))
        start = reader.line_num + 1
    return out


def _read_delimited(path: Path, text: str, fmt: Format, quoting: Quoting) -> Table:
    delimiter = "\t" if fmt == "tsv" else ","
    records: list[tuple[int, list[str]]] | None = None
    used = "minimal"
    if quoting in ("auto", "minimal"):
        try:
            records = _parse_delimited(text, delimiter, csv.QUOTE_MINIMAL)
        except csv.Error as err:
            if quoting == "minimal":
                raise DataError(f"malformed {fmt.upper()}: {err}", where=str(path)) from None
            records = None
        if quoting == "auto" and records is not None and not _consistent(records):
            unquoted = _parse_delimited(text, delimiter, csv.QUOTE_NONE)
            if _consistent(unquoted):
                records, used = unquoted, "none"
    if records is None:
        records, used = _parse_delimited(text, delimiter, csv.QUOTE_NONE), "none"
    records = [(n, r) for n, r in records if r and any(f != "" for f in r)]
    if not records:
        raise DataError("the file is empty", where=str(path))
    header_line, header = records[0]
    if not header or any(h.strip() == "" for h in header):
        raise DataError(
            "the header has an empty column name",
            where=f"{path}:{header_line}",
            hint="the first line must name every column",
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(
            f"the header repeats column(s) {dupes}",
            where=f"{path}:{header_line}",
            hint="give every column a unique name",
        )
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for n, record in records[1:]:
        if len(record) != len(header):
            raise DataError(
                f"{len(record)} field(s), but the header has {len(header)} ({', '.join(header)})",
                where=f"{path}:{n}",
                hint="a column is missing or a value holds the delimiter unquoted; fix the line"
                + (" or quote the value" if fmt == "csv" else ""),
            )
        rows.append(dict(zip(header, record, strict=True)))
        lines.append(n)
    if not rows:
        raise DataError(
            "the file has a header but no rows",
            where=str(path),
            hint="add examples below the header line",
        )
    return Table(path, fmt, rows, lines, columns=list(header), quoting=used)


def _consistent(records: list[tuple[int, list[str]]]) -> bool:
    widths = {len(r) for _, r in records if r and any(f != "" for f in r)}
    return len(widths) <= 1


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataError(
            f"cannot read Parquet: {err}", where=str(path), hint="is it really a Parquet file?"
        ) from None
    rows = table.to_pylist()
    return Table(
        path,
        "parquet",
        rows,
        list(range(1, len(rows) + 1)),
        columns=list(table.column_names),
        unit="row",
    )


def _read_hf(path: Path) -> Table:
    if not (
        (path / "dataset_info.json").exists()
        or (path / "state.json").exists()
        or (path / "dataset_dict.json").exists()
    ):
        raise DataError(
            "a folder, but not a `datasets` save_to_disk folder (no state.json)",
            where=str(path),
            hint=f"point at a file: {_SUPPORTED}",
        )
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as err:
        raise DataError(f"cannot load the `datasets` folder: {err}", where=str(path)) from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds.keys())
        if len(names) != 1:
            raise DataError(
                f"a DatasetDict with {len(names)} splits ({', '.join(names)})",
                where=str(path),
                hint=f"point at one split's folder, e.g. {path / names[0]}",
            )
        ds = ds[names[0]]
    rows = ds.to_list()
    return Table(
        path, "hf", rows, list(range(1, len(rows) + 1)), columns=list(ds.column_names), unit="row"
    )


# --------------------------------------------------------------------------- writing


def write_rows(
    rows: list[dict[str, Any]],
    path: str | Path,
    fmt: str | None = None,
    *,
    quoting: str | None = None,
    columns: list[str] | None = None,
) -> Path:
    """Write rows to ``path`` in ``fmt`` (default: from the extension; a path without
    one is written as a ``datasets`` folder). CSV/TSV write ``columns`` in order
    (default: every key, in first-seen order) with ``quoting`` ``"none"`` when the
    source was read unquoted and no value needs quoting. Returns the path written.
    """
    path = Path(path)
    if fmt is None:
        fmt = "hf" if path.suffix == "" else detect_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("jsonl", "json"):
        with path.open("w", encoding="utf-8", newline="\n") as f:
            if fmt == "jsonl":
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            else:
                json.dump(rows, f, ensure_ascii=False, indent=1, default=str)
                f.write("\n")
    elif fmt in ("csv", "tsv"):
        delimiter = "\t" if fmt == "tsv" else ","
        cols = columns or _columns(rows)
        mode: _CsvQuoting = csv.QUOTE_MINIMAL
        if quoting == "none" and not any(
            isinstance(v, str) and (delimiter in v or "\n" in v or "\r" in v)
            for row in rows
            for v in row.values()
        ):
            mode = csv.QUOTE_NONE
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(
                f,
                fieldnames=cols,
                delimiter=delimiter,
                quoting=mode,
                lineterminator="\n",
                # unquoted files keep their quote characters as plain text
                quotechar=None if mode == csv.QUOTE_NONE else '"',
            )
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k)) for k in cols})
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "hf":
        import datasets

        if path.exists():
            import shutil

            shutil.rmtree(path)
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    else:
        raise DataError(f"cannot write format {fmt!r}", where=str(path), hint=f"use {_SUPPORTED}")
    return path


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


# --------------------------------------------------------------------------- normalisation


def normalize_value(value: Any) -> Any:
    """Unicode NFC and ``\\n`` line endings for every string, recursively."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    if isinstance(value, dict):
        return {normalize_value(k): normalize_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize_value(v) for v in value]
    return value


def canonical_row(row: dict[str, Any]) -> str:
    """The normalised form of one row: NFC strings with ``\\n`` line endings,
    serialised as compact JSON with sorted keys. Two rows are "the same" exactly
    when their canonical forms are equal, whatever the file format or editor."""
    return json.dumps(
        normalize_value(row), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )


def row_hash(row: dict[str, Any]) -> str:
    """A short hash of a row's canonical form (detects a changed row)."""
    return hashlib.sha256(canonical_row(row).encode("utf-8")).hexdigest()[:16]


def content_sha256(rows: Iterable[dict[str, Any]]) -> str:
    """sha256 of the canonical rows, one per line, in file order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(canonical_row(row).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes; of a folder: of every file's relative path and bytes."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(path).as_posix()).encode("utf-8") + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
        return h.hexdigest()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
