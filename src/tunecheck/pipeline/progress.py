"""The progress display of every long stage (generation, judging, probes): count, rate, ETA."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["make_progress", "progress_task"]


def make_progress(console: Console | None = None, *, enabled: bool = True) -> Progress:
    """The rich progress display used by every long stage: count, rate and ETA."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


@contextmanager
def progress_task(
    progress: Progress, description: str, total: int
) -> Iterator[Callable[[int], None]]:
    """A progress callback for a backend: ``advance(n)`` as requests finish."""
    task_id = progress.add_task(description, total=total, rate="")
    start = time.perf_counter()
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        elapsed = max(time.perf_counter() - start, 1e-9)
        progress.update(task_id, advance=n, rate=f"{done / elapsed:.1f}/s")

    try:
        yield advance
    finally:
        progress.update(task_id, completed=total)
