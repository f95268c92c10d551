"""Check a code task's tests against its reference solutions before trusting them.

A test that fails on the reference solution makes every model fail that problem no
matter what it writes: ``tunecheck verify`` runs each reference (when the rows carry
one) in the sandbox and refuses the data, naming every such problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunecheck.code.execute import make_sandbox
from tunecheck.code.extract import build_program
from tunecheck.code.problems import problem_of
from tunecheck.errors import DataError
from tunecheck.examples import Example


@dataclass
class ReferenceReport:
    """How the reference solutions of one file fared against its tests."""

    path: str
    checked: int
    without_reference: int
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "checked": self.checked,
            "without_reference": self.without_reference,
            "failures": [{"id": i, "reason": r} for i, r in self.failures],
        }

    def raise_for_failures(self) -> None:
        """A :class:`DataError` naming every problem whose tests fail on its reference."""
        if not self.failures:
            return
        shown = "; ".join(f"example {i!r}: {r}" for i, r in self.failures[:10])
        more = f" (and {len(self.failures) - 10} more)" if len(self.failures) > 10 else ""
        raise DataError(
            f"{len(self.failures)} problem(s) fail their own tests with the reference solution: "
            f"{shown}{more}",
            where=self.path,
            hint="fix the tests or the reference solution of these problems (or drop them): "
            "no model could pass them",
        )


def check_references(
    examples: list[Example], path: str, *, timeout: float = 10.0, workers: int | None = None
) -> ReferenceReport:
    """Run every example's reference solution against its tests in the sandbox."""
    problems = [problem_of(ex) for ex in examples]
    with_ref = [p for p in problems if p.reference]
    with make_sandbox(timeout=timeout, workers=workers) as box:
        results = box.run_many([build_program(p, p.reference or "") for p in with_ref])
    return ReferenceReport(
        path=path,
        checked=len(with_ref),
        without_reference=len(problems) - len(with_ref),
        failures=[
            (p.id, r.reason()) for p, r in zip(with_ref, results, strict=True) if not r.passed
        ],
    )


def check_lock_references(lock_path: str | Path, split: str = "test") -> ReferenceReport | None:
    """The reference check of a locked split, or ``None`` when it holds no code problems."""
    from tunecheck.code.load import code_field_map
    from tunecheck.code.problems import code_examples
    from tunecheck.data.formats import read_table
    from tunecheck.data.load import examples_from_table, row_ids
    from tunecheck.data.lock import read_lock

    lock = read_lock(lock_path)
    if lock.folds or split not in lock.splits:
        return None
    path = lock.split_path(split)
    table = read_table(path)
    try:
        fmt, mapping = code_field_map(table.columns, "auto", str(path))
    except DataError:
        return None  # not code rows: nothing to check
    if mapping.reference is None:
        return ReferenceReport(str(path), 0, len(table.rows))
    mapping = mapping.updated(id=lock.id_field)
    examples = examples_from_table(table, mapping, ids=row_ids(table, lock.id_field))
    return check_references(code_examples(examples, fmt, str(path)), str(path))
