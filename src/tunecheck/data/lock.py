"""The lock file that proves the test split is untouched and uncontaminated.

``tunecheck.lock.json`` records the sha256 of the source file and, per split, the
sha256 of its *normalised* content, its row ids and a short hash per row.

Normalisation (what "byte for byte" compares): every row is read back from its
file, every string is Unicode-NFC with ``\\n`` line endings, and the row is
serialised as compact JSON with sorted keys (:func:`~tunecheck.data.formats.canonical_row`);
the split's hash is the sha256 of those lines in file order. So re-saving a file
with CRLF line endings, a byte-order mark or different CSV quoting does not
change it; editing, adding, removing or reordering rows does.

Paths inside the lock are relative to the lock's folder, so the folder can be
moved or committed as a whole.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunecheck.core.config import FieldMap, FieldMapLike, as_field_map
from tunecheck.data.contamination import Overlap, find_contamination
from tunecheck.data.formats import Table, content_sha256, read_table, row_hash
from tunecheck.data.load import examples_from_table, row_ids
from tunecheck.errors import LockError
from tunecheck.examples import Example

LOCK_NAME = "tunecheck.lock.json"
LOCK_VERSION = 1


@dataclass
class SplitInfo:
    """One locked split: where it is (relative to the lock) and what it holds."""

    path: str
    sha256: str
    rows: int
    ids: list[str]
    row_hashes: list[str]


@dataclass
class Lock:
    """The content of ``tunecheck.lock.json``.

    A k-fold split writes one ordinary lock per fold (``fold_i/tunecheck.lock.json``,
    with ``train`` and ``test`` splits and ``fold``/``n_folds`` set) and an index
    lock in the output folder whose ``folds`` lists them and whose ``splits`` is empty.
    """

    source: dict[str, Any]
    seed: int
    ratios: list[float] | None
    stratify: str | None
    id_field: str | None
    input_field: str | None
    format: str
    quoting: str | None
    splits: dict[str, SplitInfo]
    tool_version: str
    version: int = LOCK_VERSION
    fold: int | None = None
    n_folds: int | None = None
    folds: list[str] | None = None
    # groups kept whole by `split` (counts, links, stratification loosened); None in old locks
    grouping: dict[str, Any] | None = None
    path: Path | None = field(default=None, compare=False)
    warnings: list[str] = field(default_factory=list, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        data.pop("warnings")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> Lock:
        data = dict(data)
        splits = {name: SplitInfo(**info) for name, info in data.pop("splits").items()}
        return cls(splits=splits, path=path, **data)

    @property
    def folder(self) -> Path:
        return (self.path or Path(LOCK_NAME)).resolve().parent

    def split_path(self, name: str) -> Path:
        """The absolute path of split ``name``."""
        if name not in self.splits:
            raise LockError(
                f"the lock has no {name!r} split (it has: {', '.join(self.splits) or 'none'})",
                where=str(self.path),
                hint=(
                    "this is a k-fold index; pass one fold's lock, e.g. " + self.folds[0]
                    if self.folds
                    else "use one of the splits listed in the lock"
                ),
            )
        return self.folder / self.splits[name].path

    def fingerprint(self) -> str:
        """sha256 of the lock's content (what a run records as its lock hash)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def write_lock(lock: Lock, path: str | Path) -> Path:
    """Write ``lock`` as JSON to ``path``."""
    path = Path(path)
    path.write_text(
        json.dumps(lock.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    lock.path = path
    return path


def read_lock(path: str | Path) -> Lock:
    """Read a lock file; a missing or damaged lock is a :class:`LockError`."""
    path = Path(path)
    if path.is_dir():
        path = path / LOCK_NAME
    if not path.exists():
        raise LockError(
            "lock file not found",
            where=str(path),
            hint="create it with `tunecheck split DATA --out DIR`",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Lock.from_dict(data, path=path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LockError(
            f"the lock is not valid JSON: {err}",
            where=str(path),
            hint="restore it from version control or re-run `tunecheck split`",
        ) from None
    except (TypeError, KeyError, AttributeError) as err:
        raise LockError(
            f"the lock is missing or has unexpected fields: {err}",
            where=str(path),
            hint="restore it from version control or re-run `tunecheck split`",
        ) from None


@dataclass
class VerifyReport:
    """What :func:`verify_lock` found. ``override_used`` is true when overlaps were
    found and accepted with ``allow_overlap``; runs record it."""

    lock_path: str
    lock_sha256: str
    ok: bool
    test_rows: int
    test_sha256: str
    splits: dict[str, str]
    input_field: str | None
    ngram: int
    threshold: float
    overlaps: list[Overlap]
    allow_overlap: bool
    override_used: bool
    folds: list[VerifyReport] | None = None

    @property
    def exact(self) -> int:
        return sum(o.kind == "exact" for o in self.overlaps)

    @property
    def near(self) -> int:
        return sum(o.kind == "near" for o in self.overlaps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock_path": self.lock_path,
            "lock_sha256": self.lock_sha256,
            "ok": self.ok,
            "test_rows": self.test_rows,
            "test_sha256": self.test_sha256,
            "splits": self.splits,
            "input_field": self.input_field,
            "ngram": self.ngram,
            "threshold": self.threshold,
            "exact_duplicates": self.exact,
            "near_duplicates": self.near,
            "overlaps": [o.to_dict() for o in self.overlaps],
            "allow_overlap": self.allow_overlap,
            "override_used": self.override_used,
            "folds": [f.to_dict() for f in self.folds] if self.folds is not None else None,
        }


def _read_split(lock: Lock, name: str) -> Table:
    path = lock.split_path(name)
    if not path.exists():
        raise LockError(
            f"the {name} split recorded in the lock is missing: {path}",
            where=str(lock.path),
            hint="restore the file, or move the whole split folder together with its lock (paths are relative to the lock)",
        )
    return read_table(path, quoting=(lock.quoting or "auto"))  # type: ignore[arg-type]


def _diff(
    lock: Lock, name: str, table: Table, ids: list[str]
) -> tuple[list[str], list[str], list[str]]:
    """(added, removed, changed) ids of split ``name`` relative to the lock."""
    info = lock.splits[name]
    hashes = [row_hash(r) for r in table.rows]
    old = dict(zip(info.ids, info.row_hashes, strict=True))
    new = dict(zip(ids, hashes, strict=True))
    added = [i for i in ids if i not in old]
    removed = [i for i in info.ids if i not in new]
    changed = [i for i in ids if i in old and old[i] != new[i]]
    if lock.id_field is None:
        # content-hash ids change with the content: an edited row shows up as one
        # removed and one added id at the same position; call that "changed"
        old_pos = {i: k for k, i in enumerate(info.ids)}
        new_pos = {i: k for k, i in enumerate(ids)}
        removed_at = {old_pos[i]: i for i in removed}
        paired = [(removed_at[new_pos[a]], a) for a in added if new_pos[a] in removed_at]
        gone = {r for r, _ in paired} | {a for _, a in paired}
        changed += [f"{r} -> {a}" for r, a in paired]
        added = [a for a in added if a not in gone]
        removed = [r for r in removed if r not in gone]
    return added, removed, changed


def _ids_text(ids: list[str], limit: int = 10) -> str:
    more = f" … (+{len(ids) - limit})" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def _input_fields(lock: Lock, fields: FieldMapLike | None) -> FieldMap:
    mapped = as_field_map(fields)
    name = mapped.input if "input" in mapped.given else None
    return FieldMap(
        input=name or lock.input_field or "input", reference=None, id=lock.id_field, label=None
    )


def verify_lock(
    lock_path: str | Path,
    *,
    allow_overlap: bool = False,
    near_duplicate_threshold: float = 0.5,
    ngram: int = 13,
    fields: FieldMapLike | None = None,
) -> VerifyReport:
    """Check that the test split is exactly what was locked and does not overlap training data.

    Raises :class:`LockError` when the test split changed (saying how many rows
    were added, removed and changed, by id), when a split file is missing, or
    when test examples duplicate train/val examples exactly or by n-gram overlap
    ``>= near_duplicate_threshold`` (unless ``allow_overlap``, which the report records).
    """
    lock = read_lock(lock_path)
    lock_sha = hashlib.sha256(Path(lock.path or lock_path).read_bytes()).hexdigest()
    if lock.folds:
        reports = [
            verify_lock(
                lock.folder / f,
                allow_overlap=allow_overlap,
                near_duplicate_threshold=near_duplicate_threshold,
                ngram=ngram,
                fields=fields,
            )
            for f in lock.folds
        ]
        overlaps = [
            Overlap(
                o.test_id,
                o.other_id,
                f"{Path(f).parent.as_posix()}:{o.split}",
                o.kind,
                o.score,
                o.test_text,
                o.other_text,
            )
            for f, r in zip(lock.folds, reports, strict=True)
            for o in r.overlaps
        ]
        return VerifyReport(
            str(lock.path),
            lock_sha,
            True,
            sum(r.test_rows for r in reports),
            "",
            {f: "verified" for f in lock.folds},
            reports[0].input_field if reports else None,
            ngram,
            near_duplicate_threshold,
            overlaps,
            allow_overlap,
            bool(overlaps) and allow_overlap,
            folds=reports,
        )
    if "test" not in lock.splits:
        raise LockError(
            "the lock has no test split", where=str(lock.path), hint="re-run `tunecheck split`"
        )

    tables = {name: _read_split(lock, name) for name in lock.splits}
    ids = {name: row_ids(t, lock.id_field) for name, t in tables.items()}
    status: dict[str, str] = {}
    for name, table in tables.items():
        same = content_sha256(table.rows) == lock.splits[name].sha256
        status[name] = "unchanged" if same else "changed"
        if name == "test" and not same:
            added, removed, changed = _diff(lock, name, table, ids[name])
            details = [f"{len(added)} added, {len(removed)} removed, {len(changed)} changed"]
            for label, group in (("added", added), ("removed", removed), ("changed", changed)):
                if group:
                    details.append(f"{label}: {_ids_text(group)}")
            if not (added or removed or changed):
                details.append("the same rows in a different order")
            raise LockError(
                "the test split changed since it was locked: " + "; ".join(details),
                where=str(tables[name].path),
                hint="restore the locked test file (e.g. from version control); if the change is intended, "
                "re-split with `tunecheck split ... --force` and treat the result as a new test set",
            )

    field_map = _input_fields(lock, fields)
    examples = {
        name: examples_from_table(t, field_map, ids=ids[name]) for name, t in tables.items()
    }
    overlaps = []
    for other in ("train", "val"):
        if other in examples:
            overlaps += find_contamination(
                examples[other],
                examples["test"],
                ngram=ngram,
                threshold=near_duplicate_threshold,
                split=other,
            )
    # one entry per test example: the train overlap if there is one
    seen: set[str] = set()
    overlaps = [o for o in overlaps if not (o.test_id in seen or seen.add(o.test_id))]  # type: ignore[func-returns-value]
    if overlaps and not allow_overlap:
        exact = [o for o in overlaps if o.kind == "exact"]
        near = [o for o in overlaps if o.kind == "near"]
        lines = []
        for o in overlaps[:15]:
            lines.append(
                f"    {o.kind:5} {o.score:.2f}  test {o.test_id} ~ {o.split} {o.other_id}: {o.test_text[:70]!r}"
            )
        more = f"\n    … and {len(overlaps) - 15} more (see --json)" if len(overlaps) > 15 else ""
        raise LockError(
            f"the test split overlaps the training data: {len(exact)} exact duplicate(s), {len(near)} near-duplicate(s) "
            f"(>= {near_duplicate_threshold:.0%} of {ngram}-word n-grams)\n"
            + "\n".join(lines)
            + more,
            where=str(lock.path),
            hint="remove these examples from the source data (or from train) and re-split; or accept them with "
            "--allow-overlap (`allow_overlap: true` in the spec), which is recorded with the run",
        )
    return VerifyReport(
        lock_path=str(lock.path),
        lock_sha256=lock_sha,
        ok=True,
        test_rows=len(tables["test"].rows),
        test_sha256=lock.splits["test"].sha256,
        splits=status,
        input_field=field_map.input,
        ngram=ngram,
        threshold=near_duplicate_threshold,
        overlaps=overlaps,
        allow_overlap=allow_overlap,
        override_used=bool(overlaps) and allow_overlap,
    )


def load_locked_split(
    lock_path: str | Path,
    split: str = "test",
    *,
    fields: FieldMapLike | None = None,
    allow_overlap: bool = False,
    near_duplicate_threshold: float = 0.5,
    ngram: int = 13,
) -> tuple[list[Example], VerifyReport]:
    """Verify the lock (see :func:`verify_lock`), then load one split as examples.

    Example ids are the ones recorded in the lock, so results line up with it.
    """
    lock = read_lock(lock_path)
    if lock.folds:
        raise LockError(
            f"this lock describes {len(lock.folds)} folds, not one split",
            where=str(lock.path),
            hint=f"evaluate one fold at a time, e.g. {lock.folder / lock.folds[0]}",
        )
    mapped = as_field_map(fields)
    if "id" in mapped.given and mapped.id != lock.id_field:
        raise LockError(
            f"the spec maps the id to {mapped.id!r}, but the split was locked with id field {lock.id_field!r}",
            where=str(lock.path),
            hint="drop `id` from the field mapping (the lock's ids are used) or re-split with the same --id-field",
        )
    report = verify_lock(
        lock_path,
        allow_overlap=allow_overlap,
        near_duplicate_threshold=near_duplicate_threshold,
        ngram=ngram,
        fields=mapped,
    )
    table = _read_split(lock, split)
    mapping = mapped.updated(id=lock.id_field)
    return examples_from_table(table, mapping, ids=row_ids(table, lock.id_field)), report
