"""What the viewer, the blind review and the HTML report read: a stored run, ready to browse.

:func:`load_run` reads a run's stored :class:`~tunecheck.results.RunResult` plus the
examples' inputs and builds, per task, the columns the example browser filters on
(flips, differing outputs, errors/invalid outputs, slices, a lower-cased search text),
so that filtering and paging 10,000 examples is a pass over plain lists.
:class:`RunCache` keeps finished runs loaded (they never change).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tunecheck.errors import SpecError, TunecheckError
from tunecheck.flips import Flip, flip_kind
from tunecheck.results import ExampleOutcome, RunResult, TaskResult
from tunecheck.store import RunDetail, Store
from tunecheck.store.schema import ExampleRow

FILTERS = ("all", "broken", "fixed", "differ", "errors")
PAGE_SIZE = 25


def render_input(value: Any) -> str:
    """An example's input as text: chat messages become ``role: content`` lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value, ensure_ascii=False, indent=1)
    return str(value)


@dataclass
class TaskView:
    """One task of a run with per-example columns for the example browser."""

    task: TaskResult
    inputs: dict[str, str]
    invalid: dict[str, set[str]] = field(default_factory=dict)
    flips: dict[str, list[Flip | None]] = field(default_factory=dict)
    differ: dict[str, list[bool]] = field(default_factory=dict)
    has_error: list[bool] = field(default_factory=list)
    haystack: list[str] = field(default_factory=list)

    @property
    def examples(self) -> list[ExampleOutcome]:
        return self.task.examples

    def build(self, parser: Any | None) -> None:
        task = self.task
        cand = task.candidate
        primary = task.primary_metric
        names = [cand, *task.baselines]
        if parser is not None and parser.type != "raw":
            from tunecheck.metrics.parsers import parse_output

            for name in names:
                bad: set[str] = set()
                try:
                    for ex in task.examples:
                        text = ex.outputs.get(name)
                        if text is not None and parse_output(text, parser) is None:
                            bad.add(ex.id)
                except SpecError:
                    bad = set()  # labels only known from the data: invalid outputs not shown
                self.invalid[name] = bad
        higher = next((c.higher_is_better for c in task.comparisons if c.metric == primary), True)
        for b in task.baselines:
            flips: list[Flip | None] = []
            differ: list[bool] = []
            for ex in task.examples:
                flips.append(
                    flip_kind(
                        ex.scores.get(cand, {}).get(primary),
                        ex.scores.get(b, {}).get(primary),
                        higher,
                    )
                )
                differ.append(ex.outputs.get(cand) != ex.outputs.get(b))
            self.flips[b], self.differ[b] = flips, differ
        self.has_error = [
            any(ex.outputs.get(n) is None for n in names)
            or any(ex.id in self.invalid.get(n, ()) for n in names)
            for ex in task.examples
        ]
        self.haystack = [
            "\n".join(
                [
                    self.inputs.get(ex.id, ""),
                    render_input(ex.reference),
                    ex.id,
                    *(o for o in ex.outputs.values() if o),
                ]
            ).lower()
            for ex in task.examples
        ]

    def select(
        self,
        *,
        kind: str = "all",
        baseline: str | None = None,
        slice_: str | None = None,
        query: str | None = None,
    ) -> list[int]:
        """Indices of the examples passing the filters (``kind`` one of :data:`FILTERS`)."""
        if kind not in FILTERS:
            raise TunecheckError(f"unknown filter {kind!r}", hint=f"use one of {FILTERS}")
        b = baseline or self.task.strongest_baseline
        if b not in self.flips:
            raise TunecheckError(f"no baseline {b!r} in task {self.task.name!r}")
        flips, differ = self.flips[b], self.differ[b]
        q = (query or "").strip().lower()
        out = []
        for i, ex in enumerate(self.task.examples):
            if kind in ("broken", "fixed") and flips[i] != kind:
                continue
            if kind == "differ" and not differ[i]:
                continue
            if kind == "errors" and not self.has_error[i]:
                continue
            if slice_ and slice_ not in ex.slices:
                continue
            if q and q not in self.haystack[i]:
                continue
            out.append(i)
        return out

    def counts(self, baseline: str | None = None) -> dict[str, int]:
        b = baseline or self.task.strongest_baseline
        return {
            "all": len(self.task.examples),
            "broken": sum(f == "broken" for f in self.flips[b]),
            "fixed": sum(f == "fixed" for f in self.flips[b]),
            "differ": sum(self.differ[b]),
            "errors": sum(self.has_error),
        }


@dataclass
class RunData:
    """A stored run: its summary row, its result and a :class:`TaskView` per task."""

    #: the stored run without its result JSON (parsed into ``result``)
    run: RunDetail
    result: RunResult
    tasks: dict[str, TaskView]

    @property
    def id(self) -> str:
        return self.run.id

    def task(self, name: str | None = None) -> TaskView:
        if name is None:
            if not self.tasks:
                raise TunecheckError(f"run {self.id} has no task results")
            return next(iter(self.tasks.values()))
        if name not in self.tasks:
            raise TunecheckError(f"run {self.id} has no task {name!r}")
        return self.tasks[name]


def _inputs(store: Store, run_id: str, task: str) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(ExampleRow.example_id, ExampleRow.input).where(
                ExampleRow.run_id == run_id, ExampleRow.task == task
            )
        )
        return {ex_id: render_input(value) for ex_id, value in rows}


def _parsers(spec: dict[str, Any] | None) -> dict[str, Any]:
    from tunecheck.spec import ParserSpec

    out: dict[str, Any] = {}
    raw = spec or {}
    for t in raw.get("tasks") or ([raw["task"]] if "task" in raw else []):
        with contextlib.suppress(Exception):  # an old or hand-edited spec: no invalid column
            out[t.get("name", "task")] = ParserSpec.model_validate(t.get("parser") or {})
    return out


def load_run(store: Store, run_id: str) -> RunData:
    """Read a run (a unique id prefix is enough) with everything the viewer shows."""
    stored = store.get_run(run_id)
    raw = stored.result
    # the cache keeps the parsed result only, not its JSON as well
    run = dataclasses.replace(stored, result=None)
    if not raw:
        raise TunecheckError(
            f"run {run.id} has no stored result (status: {run.status})",
            hint="re-run its spec with `tunecheck run` to complete it",
        )
    result = RunResult.model_validate(raw)
    parsers = _parsers(run.spec)
    tasks = {}
    for t in result.tasks:
        view = TaskView(task=t, inputs=_inputs(store, run.id, t.name))
        view.build(parsers.get(t.name))
        tasks[t.name] = view
    return RunData(run=run, result=result, tasks=tasks)


class RunCache:
    """Finished runs stay loaded (a few at a time); running ones are read afresh."""

    def __init__(self, store: Store, size: int = 4) -> None:
        self.store = store
        self.size = size
        self._items: OrderedDict[str, RunData] = OrderedDict()
        #: run id -> (headline, spec name) of finished runs, for the runs page
        self.headlines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunData:
        with self._lock:
            if run_id in self._items:
                self._items.move_to_end(run_id)
                return self._items[run_id]
        data = load_run(self.store, run_id)
        if data.run.status in ("finished", "done", "completed") or data.run.finished_at:
            with self._lock:
                self._items[data.id] = data
                self._items[run_id] = data
                while len(self._items) > self.size * 2:
                    self._items.popitem(last=False)
        return data
