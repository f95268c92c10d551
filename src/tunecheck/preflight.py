"""Pre-flight: everything a spec gets wrong that can be found without a model, found at once.

A misspelt metric reported after hours of generation is the worst kind of error. Before
any backend is constructed, :func:`preflight` checks the contenders (backend names,
options, local model and adapter paths), every task (metric and parser names and their
compatibility, the JSON schema, the lock, the data's fields in every row, references
each metric can read, prompt templates against every example) and every probe (names,
files, formats, metrics). All problems are collected and raised together as one
:class:`PreflightError`, each naming the spec line or data file line and field.

Checks are registered in :data:`CHECKS` (``@check("name")``), so a module that adds
spec settings (a judge, tracking) adds its own check next to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunecheck.errors import SpecError, TunecheckError
from tunecheck.registry import Registry
from tunecheck.spec import Spec, TaskSpec


@dataclass(frozen=True)
class Problem:
    """One thing to fix: where (``file:line``), which field, what is wrong, what to do."""

    where: str
    field: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.where}: {self.field}: {self.message}"
        return text + (f" (hint: {self.hint})" if self.hint else "")


class PreflightError(SpecError):
    """The spec cannot run: every problem found before loading a model, listed together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        n = len(problems)
        lines = "\n  - ".join(str(p) for p in problems)
        super().__init__(
            f"{n} problem{'s' if n != 1 else ''} found before any model was loaded:\n  - {lines}",
            hint="fix them and run again (`tunecheck check SPEC` repeats these checks alone)",
        )


@dataclass
class PreflightContext:
    """What the checks share: run options, and the tasks they loaded (lock verified)."""

    allow_overlap: bool = False
    limit: int | None = None
    probes: bool = True
    tasks: dict[int, Any] = field(default_factory=dict)  # task index -> runner.LoadedTask


Check = Callable[[Spec, PreflightContext], Iterable[Problem]]
CHECKS: Registry[Check] = Registry("pre-flight check")
check = CHECKS.register
"""Decorator registering a pre-flight check: ``@check("judge")``."""


@dataclass
class Preflight:
    """The outcome of :func:`preflight`: problems, and the tasks loaded along the way."""

    problems: list[Problem]
    tasks: list[Any]  # runner.LoadedTask, in spec order (complete only without problems)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise PreflightError(self.problems)


def preflight(
    spec: Spec, *, allow_overlap: bool = False, limit: int | None = None, probes: bool = True
) -> Preflight:
    """Run every registered check on ``spec`` without loading or calling a model."""
    ctx = PreflightContext(allow_overlap=allow_overlap, limit=limit, probes=probes)
    problems: list[Problem] = []
    # registration order: contenders, tasks (which load the data), then what needs the data
    for name in _ORDER + [n for n in CHECKS.names() if n not in _ORDER]:
        problems.extend(CHECKS.get(name)(spec, ctx))
    tasks = [ctx.tasks[i] for i in sorted(ctx.tasks)]
    return Preflight(problems=problems, tasks=tasks)


def _problem(spec: Spec, path: tuple[Any, ...], message: str, hint: str | None = None) -> Problem:
    return Problem(spec.locate(*path), ".".join(str(p) for p in path), message, hint)


def _from_error(
    spec: Spec, path: tuple[Any, ...], err: TunecheckError, prefix: str = ""
) -> Problem:
    where = spec.locate(*path)
    message = prefix + (f"{err.where}: {err.message}" if err.where else err.message)
    return Problem(where, ".".join(str(p) for p in path), message, err.hint)


# --------------------------------------------------------------------------- contenders


@check("contenders")
def _contenders(spec: Spec, ctx: PreflightContext) -> Iterable[Problem]:
    """Backend names, option names and values, and local model/adapter paths, per contender."""
    import importlib

    from tunecheck.models import _BUILTIN_MODULES, backends, split_model_ref

    for i, c in enumerate(spec.contenders):
        path = ("contenders", i, "model")
        name, target = split_model_ref(c.model)
        if not target:
            yield _problem(spec, path, f"{c.model!r} names no model", "write BACKEND:PATH_OR_NAME")
            continue
        try:
            if name not in backends and name in _BUILTIN_MODULES:
                importlib.import_module(_BUILTIN_MODULES[name])
            cls = backends.get(name, where=None)
        except (TunecheckError, ImportError) as err:
            yield _problem(spec, path, f"backend {name!r} is not available: {err}")
            continue
        validate = getattr(cls, "validate_ref", None)
        if validate is None:
            continue  # a plug-in backend without a cheap check: it is checked when loaded
        try:
            validate(target, **c.options)
        except TunecheckError as err:
            yield _from_error(spec, ("contenders", i, "model"), err, f"contender {c.name!r}: ")


# --------------------------------------------------------------------------- tasks

# what the built-in metrics read from every example
_NEEDS_REFERENCE = {"json_exact_match", "field_accuracy", "json_schema_valid"}
_NEEDS_REFERENCE_OR_LABEL = {"exact_match", "numeric_match", "chrf", "accuracy", "macro_f1"}
_JSON_REFERENCE = {"json_exact_match", "field_accuracy"}
# cheap, model-free metrics: run once on the references themselves, which exercises their
# parsing of every reference (labels, JSON, numbers, schema) before any output exists
_DRY_RUN = {
    "accuracy",
    "macro_f1",
    "json_exact_match",
    "field_accuracy",
    "json_schema_valid",
    "exact_match",
    "numeric_match",
    "chrf",
}


def _lines_text(lines: list[int], unit: str = "line") -> str:
    shown = ", ".join(str(n) for n in lines[:10])
    more = f" and {len(lines) - 10} more" if len(lines) > 10 else ""
    return f"{unit}{'s' if len(lines) > 1 else ''} {shown}{more}"


def _task_names(spec: Spec, t: int, task: TaskSpec) -> list[Problem]:
    from tunecheck.judge.config import JUDGE_METRICS
    from tunecheck.metrics import CLASSIFICATION_METRICS, METRICS
    from tunecheck.metrics.parsers import PARSERS, _compile

    problems: list[Problem] = []
    for m, name in enumerate(task.metrics):
        # the judge's metrics are produced by the `judge:` block (checked with the spec)
        if name not in METRICS and not (task.judge is not None and name in JUDGE_METRICS):
            import difflib

            close = difflib.get_close_matches(name, METRICS.names(), n=1)
            problems.append(
                _problem(
                    spec,
                    ("tasks", t, "metrics", m),
                    f"unknown metric {name!r}"
                    + (f" (did you mean {close[0]!r}?)" if close else ""),
                    f"known metrics: {', '.join(METRICS.names())}",
                )
            )
    parser = task.parser
    if parser.type not in PARSERS:
        import difflib

        close = difflib.get_close_matches(parser.type, PARSERS.names(), n=1)
        problems.append(
            _problem(
                spec,
                ("tasks", t, "parser", "type"),
                f"unknown parser type {parser.type!r}"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                f"known parser types: {', '.join(PARSERS.names())} (a plugin may add more)",
            )
        )
    if parser.type == "regex":
        if not parser.pattern:
            problems.append(
                _problem(spec, ("tasks", t, "parser"), "a regex parser needs `pattern`")
            )
        else:
            try:
                _compile(parser.pattern)
            except SpecError as err:
                problems.append(_from_error(spec, ("tasks", t, "parser", "pattern"), err))
    elif parser.pattern:
        problems.append(
            _problem(
                spec,
                ("tasks", t, "parser", "pattern"),
                f"`pattern` is only read by the regex parser, not {parser.type!r}",
                "set `type: regex` or drop `pattern`",
            )
        )
    classification = sorted(CLASSIFICATION_METRICS.intersection(task.metrics))
    if classification and parser.type in ("number", "json"):
        problems.append(
            _problem(
                spec,
                ("tasks", t, "parser", "type"),
                f"metrics {classification} need a label, raw or regex parser, not {parser.type!r}",
                "use `parser: {type: label, labels: [...]}` for classification",
            )
        )
    if "json_schema_valid" in task.metrics:
        if task.json_schema is None:
            problems.append(
                _problem(
                    spec,
                    ("tasks", t, "metrics"),
                    "metric json_schema_valid needs a schema",
                    "add `json_schema:` (a JSON Schema object) to the task, or drop the metric",
                )
            )
        else:
            import jsonschema

            cls = jsonschema.validators.validator_for(task.json_schema)
            try:
                cls.check_schema(task.json_schema)
            except jsonschema.SchemaError as err:
                problems.append(
                    _problem(
                        spec, ("tasks", t, "json_schema"), f"invalid JSON Schema: {err.message}"
                    )
                )
    return problems


def _task_table(spec: Spec, t: int, task: TaskSpec) -> tuple[Any | None, list[Problem]]:
    """The rows the task will score (the locked split, or the data file)."""
    from tunecheck.data.formats import read_table

    try:
        if task.lock:
            from tunecheck.data.lock import read_lock

            path: Path | str = read_lock(task.lock).split_path(task.split)
        else:
            path = task.data
        return read_table(path), []
    except TunecheckError as err:
        field_name = "lock" if task.lock else "data"
        return None, [_from_error(spec, ("tasks", t, field_name), err)]


def _row_fields(spec: Spec, t: int, task: TaskSpec, table: Any) -> list[Problem]:
    """Every mapped field in every row: one problem per field, listing all rows that lack it."""
    fields = task.fields
    metrics = set(task.metrics)
    wanted: list[tuple[str, str, bool]] = [(fields.input, "input", True)]
    if fields.label is not None:
        wanted.append((fields.label, "label", True))
    ref_needed = bool(metrics & _NEEDS_REFERENCE) or (
        bool(metrics & _NEEDS_REFERENCE_OR_LABEL) and fields.label is None
    )
    if fields.reference is not None and (ref_needed or "reference" in fields.model_fields_set):
        wanted.append((fields.reference, "reference", True))
    elif fields.reference is None and ref_needed:
        return [
            _problem(
                spec,
                ("tasks", t, "fields", "reference"),
                f"metrics {sorted(metrics & (_NEEDS_REFERENCE | _NEEDS_REFERENCE_OR_LABEL))} "
                "need a reference (or a label) but none is mapped",
            )
        ]
    slices = [fields.slices] if isinstance(fields.slices, str) else list(fields.slices or [])
    wanted += [(s, "slices", False) for s in slices]
    if fields.id is not None and "id" in fields.model_fields_set and not task.lock:
        wanted.append((fields.id, "id", True))
    problems: list[Problem] = []
    for column, role, every_row in wanted:
        missing = [
            table.lines[i]
            for i, row in enumerate(table.rows)
            if row.get(column) is None or (every_row and row.get(column) == "")
        ]
        if len(missing) == len(table.rows):
            problems.append(
                _problem(
                    spec,
                    ("tasks", t, "fields", role),
                    f"the {role} field {column!r} is not a column of {table.path} "
                    f"(columns: {', '.join(table.columns)})",
                    f"map the right column with `fields: {{{role}: NAME}}`",
                )
            )
        elif missing and every_row:
            problems.append(
                Problem(
                    f"{table.path}",
                    f"tasks.{t}.fields.{role}",
                    f"{len(missing)} of {len(table.rows)} rows have no {role} field {column!r} "
                    f"({_lines_text(missing, table.unit)})",
                    f"give every row a {role!r} value, or drop those rows",
                )
            )
    if fields.reference is not None and metrics & _JSON_REFERENCE:
        bad: list[int] = []
        not_object: list[int] = []
        for i, row in enumerate(table.rows):
            ref = row.get(fields.reference)
            if ref is None or ref == "":
                continue  # reported above
            try:
                value = json.loads(ref) if isinstance(ref, str) else ref
            except json.JSONDecodeError:
                bad.append(table.lines[i])
                continue
            if not isinstance(value, dict) or not value:
                not_object.append(table.lines[i])
        if bad:
            problems.append(
                Problem(
                    str(table.path),
                    f"tasks.{t}.fields.reference",
                    f"{len(bad)} references are not valid JSON ({_lines_text(bad, table.unit)}), "
                    f"but metrics {sorted(metrics & _JSON_REFERENCE)} compare JSON",
                )
            )
        if not_object and "field_accuracy" in metrics:
            problems.append(
                Problem(
                    str(table.path),
                    f"tasks.{t}.fields.reference",
                    f"{len(not_object)} references are not non-empty JSON objects "
                    f"({_lines_text(not_object, table.unit)}); field_accuracy compares fields",
                    "use json_exact_match or exact_match for non-object references",
                )
            )
    return problems


def _dry_run(spec: Spec, t: int, task: TaskSpec, examples: list[Any]) -> list[Problem]:
    """Score the references as if they were outputs: each metric reads every reference."""

    problems = []
    runnable = [
        m
        for m in task.metrics
        if m in _DRY_RUN and (m != "json_schema_valid" or task.json_schema is not None)
    ]
    for name in runnable:
        outputs = [(e.reference if e.reference is not None else e.label) for e in examples]
        texts = [
            o if isinstance(o, str) or o is None else json.dumps(o, ensure_ascii=False)
            for o in outputs
        ]
        try:
            task.to_task(examples).score([t_ or "" for t_ in texts], metrics=[name])
        except TunecheckError as err:
            problems.append(_from_error(spec, ("tasks", t, "metrics"), err, f"metric {name!r}: "))
    return problems


class _Skip(Exception):
    """The task's rows have problems: do not load it, but keep checking what can be."""


def _complete_examples(task: TaskSpec, table: Any) -> list[Any]:
    """Examples from the rows that have every mapped field (ids by position)."""
    from dataclasses import replace

    from tunecheck.data.load import examples_from_table

    f = task.fields
    needed = [c for c in (f.input, f.label, f.reference) if c is not None and c in table.columns]
    keep = [i for i, r in enumerate(table.rows) if all(r.get(c) is not None for c in needed)]
    subset = replace(
        table, rows=[table.rows[i] for i in keep], lines=[table.lines[i] for i in keep]
    )
    try:
        return examples_from_table(
            subset, f.model_copy(update={"id": None}), ids=[str(i) for i in keep]
        )
    except TunecheckError:
        return []


def _prompts(spec: Spec, t: int, examples: list[Any]) -> list[Problem]:
    problems = []
    for i, c in enumerate(spec.contenders):
        try:
            prompt = c.prompt.build()
            for e in examples:
                prompt.render(e)
        except TunecheckError as err:
            problems.append(
                _from_error(
                    spec, ("contenders", i, "prompt"), err, f"contender {c.name!r} on task {t}: "
                )
            )
    return problems


@check("tasks")
def _tasks(spec: Spec, ctx: PreflightContext) -> Iterable[Problem]:
    """Metric/parser names and fit, the lock, every row's fields, references, prompts."""
    from tunecheck.pipeline.tasks import load_task

    for t, task in enumerate(spec.tasks):
        names = _task_names(spec, t, task)
        yield from names
        table, problems = _task_table(spec, t, task)
        if table is None:
            yield from problems
            continue
        # code tasks come in HumanEval/MBPP/plain formats: their loader maps the fields and
        # names the problem a row is missing (a missing test, entry point...)
        rows = [] if task.code is not None else _row_fields(spec, t, task, table)
        yield from rows
        try:
            if rows:
                raise _Skip
            loaded = load_task(task, allow_overlap=ctx.allow_overlap, limit=ctx.limit)
        except (TunecheckError, _Skip) as err:
            if isinstance(err, TunecheckError):
                yield _from_error(spec, ("tasks", t, "lock" if task.lock else "data"), err)
            # the prompts can still be tried on the rows that are complete
            yield from _prompts(spec, t, _complete_examples(task, table))
            continue
        ctx.tasks[t] = loaded
        yield from _prompts(spec, t, loaded.examples)
        yield from _dry_run(spec, t, task, loaded.examples)


# --------------------------------------------------------------------------- probes


@check("probes")
def _probes(spec: Spec, ctx: PreflightContext) -> Iterable[Problem]:
    """Every probe builds: builtin names, files, formats, fields and metrics."""
    if not ctx.probes:
        return
    from tunecheck.probes import build_probe

    declared = spec.probes is not None
    for p, probe in enumerate(spec.probe_specs()):
        try:
            if probe.lm_eval is not None:
                from tunecheck.probes.lm_eval_spec import check_lm_eval_probes

                # an unknown lm-eval task fails now, not after hours of generation
                check_lm_eval_probes([probe])
            else:
                build_probe(probe, seed=spec.seed)
        except TunecheckError as err:
            path = ("probes", p) if declared else ("probes",)
            yield _from_error(spec, path, err, f"probe {probe.name!r}: ")


@check("judge-labels")
def _judge_labels(spec: Spec, ctx: PreflightContext) -> Iterable[Problem]:
    """People's labels attached to a pairwise judge can be read, every line of them."""
    from tunecheck.judge.human_labels import load_human_labels

    for t, task in enumerate(spec.tasks):
        pairwise = task.judge.pairwise if task.judge is not None else None
        if pairwise is None or pairwise.human_labels is None:
            continue
        try:
            load_human_labels(pairwise.human_labels)
        except TunecheckError as err:
            yield _from_error(spec, ("tasks", t, "judge", "pairwise", "human_labels"), err)


_ORDER = ["contenders", "tasks", "probes"]


def check_task_settings(spec: Spec, task: TaskSpec) -> None:
    """Metric and parser names, their fit and the JSON schema of one task; raises all problems.

    For callers that score a task without :func:`preflight` (the training callback,
    checkpoint ranking): a misspelt metric fails when they are built, not at the first
    evaluation hours into training.
    """
    index = next(i for i, t in enumerate(spec.tasks) if t is task)
    problems = _task_names(spec, index, task)
    if problems:
        raise PreflightError(problems)
