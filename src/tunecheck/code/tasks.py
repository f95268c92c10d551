"""A spec's code task: its problems loaded as examples (from a file or a locked split)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunecheck.code.load import load_code_examples, load_locked_code_examples
from tunecheck.examples import Example

if TYPE_CHECKING:
    from tunecheck.spec import TaskSpec


def load_code_task(
    task: TaskSpec, *, allow_overlap: bool = False
) -> tuple[list[Example], dict[str, Any] | None]:
    """The task's problems and, for a locked split, the lock verification report.

    The field mapping follows the code format unless the task maps ``fields`` itself.
    """
    assert task.code is not None
    fields = task.fields if "fields" in task.model_fields_set else None
    if task.lock:
        examples, verify = load_locked_code_examples(
            task.lock,
            task.split,
            task.code.format,
            fields=fields,
            show_tests=task.code.show_tests,
            allow_overlap=allow_overlap or task.allow_overlap,
            near_duplicate_threshold=task.near_duplicate_threshold,
        )
        report = verify.to_dict() if hasattr(verify, "to_dict") else dict(verify)  # type: ignore[call-overload]
        return examples, report
    examples = load_code_examples(
        task.data, task.code.format, fields=fields, show_tests=task.code.show_tests
    )
    return examples, None
