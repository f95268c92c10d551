"""The validation sample used during training, and the refusal to touch the test split."""

from __future__ import annotations

import json
import random
from typing import Any

from tunecheck.errors import TunecheckError
from tunecheck.examples import Example
from tunecheck.spec import Spec, TaskSpec


def json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def pick_task(spec: Spec, name: str | None) -> TaskSpec:
    """The spec's task called ``name`` (default: the first)."""
    if name is None:
        return spec.tasks[0]
    for task in spec.tasks:
        if task.name == name:
            return task
    raise TunecheckError(
        f"no task named {name!r} in the spec (tasks: {', '.join(t.name for t in spec.tasks)})",
        where="task",
    )


def refuse_test_split(task: TaskSpec, split: str, where: str) -> None:
    """Training decisions (early stopping, checkpoint choice) must never see the test split."""
    if split == "test" or split == task.split:
        raise TunecheckError(
            f"refusing to evaluate on the {split!r} split during training: it is the locked test split "
            "that `tunecheck run` uses for the final verdict. The test set must be touched by no "
            "training decision (early stopping and checkpoint choice included), or its score stops "
            "being an honest estimate of unseen data.",
            where=where,
            hint="use split='val' (the default), which `tunecheck split` creates for exactly this",
        )


def validation_sample(
    task: TaskSpec, split: str, size: int | None, seed: int, *, where: str = "split"
) -> list[Example]:
    """A fixed, seeded sample of ``size`` examples (all when ``None``) of the lock's ``split``."""
    refuse_test_split(task, split, where)
    if not task.lock:
        raise TunecheckError(
            f"task {task.name!r} has no lock, so there is no validation split to evaluate during training",
            where="spec task.lock",
            hint="split the data first: `tunecheck split DATA --out DIR`, then set task.lock to "
            "DIR/tunecheck.lock.json",
        )
    from tunecheck.data import load_locked_split

    examples, _ = load_locked_split(
        task.lock,
        split=split,
        fields=task.fields,
        allow_overlap=task.allow_overlap,
        near_duplicate_threshold=task.near_duplicate_threshold,
    )
    if not examples:
        raise TunecheckError(f"the {split!r} split is empty", where=str(task.lock))
    if size is None or len(examples) <= size:
        return list(examples)
    # sorted indices: the sample keeps the split's order, whatever the seed
    chosen = sorted(random.Random(seed).sample(range(len(examples)), size))
    return [examples[i] for i in chosen]
