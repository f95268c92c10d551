"""Load a spec task's examples: verify its lock first (a changed or contaminated test split is
refused), apply the limit, and check every reference a metric needs, all before any model call.
"""

from __future__ import annotations

from typing import Any

from tunecheck.errors import TunecheckError
from tunecheck.pipeline.state import LoadedTask
from tunecheck.spec import TaskSpec


def load_task(
    task: TaskSpec, *, allow_overlap: bool = False, limit: int | None = None
) -> LoadedTask:
    """Verify the task's lock (refusing a changed or contaminated test split) and load it."""
    from tunecheck.data import load_examples, load_locked_split

    report: dict[str, Any] | None = None
    lock_hash: str | None = None
    if task.code is not None:
        from tunecheck.code.tasks import load_code_task

        examples, report = load_code_task(task, allow_overlap=allow_overlap)
        lock_hash = (report or {}).get("lock_sha256") or (report or {}).get("lock_hash")
    elif task.lock:
        examples, verify = load_locked_split(
            task.lock,
            split=task.split,
            fields=task.fields,
            allow_overlap=allow_overlap or task.allow_overlap,
            near_duplicate_threshold=task.near_duplicate_threshold,
        )
        report = verify.to_dict()
        lock_hash = report.get("lock_sha256") or report.get("lock_hash")
    else:
        examples = load_examples(task.data, task.fields)
    n = task.limit if limit is None else min(limit, task.limit or limit)
    if n is not None:
        examples = examples[:n]
    if not examples:
        raise TunecheckError("the task has no examples", where=task.data)
    from tunecheck.metrics import check_references

    # before any model call: a reference-based metric needs a reference on every example
    check_references(task.metrics, examples, where=f"task {task.name!r} ({task.data})")
    return LoadedTask(spec=task, examples=examples, lock_hash=lock_hash, verify_report=report)
