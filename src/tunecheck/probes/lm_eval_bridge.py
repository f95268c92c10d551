"""lm-evaluation-harness bridge: import two runs made with ``--log_samples`` and pair them.

lm-eval writes, under ``--output_path`` (usually in a sub-folder named after the model),
``results_<date>.json`` (aggregates) and one ``samples_<task>_<date>.jsonl`` per task with a
record per document: ``doc_id``, ``doc_hash``, ``filter``, ``metrics`` and the per-sample
metric values (``acc``, ``acc_norm``, ``exact_match``...). :func:`import_lm_eval` reads the
newest files of each task in both folders, matches records by ``doc_id`` (and filter), and
returns one :class:`PairedProbe` per task (and filter) so the regression table and the
paired statistics treat them like any other probe.

:func:`run_lm_eval_tasks` runs lm-eval itself through its Python API (the ``lm-eval``
package must be installed) and writes the same folder layout.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunecheck.errors import DataError, TunecheckError
from tunecheck.probes.base import ProbeOutcome, outcome

_SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")
_RESULTS_RE = re.compile(r"^results_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.json$")
# per-sample fields that are bookkeeping, never metrics
_NOT_METRICS = {
    "doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
    "doc_hash", "prompt_hash", "target_hash",
}  # fmt: skip
_DIRECTIONS = "__higher_is_better__"  # key under which _reported keeps lm-eval's directions
PREFERRED_METRICS = (
    "acc", "exact_match", "prompt_level_strict_acc", "acc_norm", "mc2", "pass@1", "f1",
)  # fmt: skip


@dataclass
class PairedProbe:
    """One lm-eval task (and filter) on both models, aligned example by example."""

    name: str
    metric: str
    base: ProbeOutcome
    finetuned: ProbeOutcome
    source: str = "lm-eval"


@dataclass
class _TaskSamples:
    task: str
    path: Path
    records: dict[tuple[str, int], dict[str, Any]]  # (filter, doc_id) -> record


def _sample_files(folder: Path) -> dict[str, Path]:
    """Newest ``samples_<task>_<date>.jsonl`` per task, searched recursively."""
    newest: dict[str, tuple[str, Path]] = {}
    for path in folder.rglob("samples_*.jsonl"):
        m = _SAMPLES_RE.match(path.name)
        if not m:
            continue
        task, date = m.group("task"), m.group("date")
        if task not in newest or date > newest[task][0]:
            newest[task] = (date, path)
    return {task: path for task, (_, path) in newest.items()}


def _reported(folder: Path) -> dict[str, dict[str, Any]]:
    """Aggregates from the newest ``results_*.json`` that mentions each task."""
    out: dict[str, dict[str, Any]] = {}
    files = sorted(
        (p for p in folder.rglob("results_*.json") if _RESULTS_RE.match(p.name)),
        key=lambda p: _RESULTS_RE.match(p.name).group("date"),  # type: ignore[union-attr]
    )
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        directions = data.get("higher_is_better") or {}
        for task, values in (data.get("results") or {}).items():
            if isinstance(values, dict):
                out[task] = dict(values)
                if isinstance(directions.get(task), dict):
                    # lm-eval's own direction per metric (perplexity, bits_per_byte: lower)
                    out[task][_DIRECTIONS] = directions[task]
    return out


def _read_samples(task: str, path: Path) -> _TaskSamples:
    records: dict[tuple[str, int], dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"invalid JSON: {err.msg}", where=f"{path}:{lineno}") from None
            if "doc_id" not in rec:
                raise DataError("sample record without `doc_id`", where=f"{path}:{lineno}",
                                hint="import files written by lm-eval with --log_samples")  # fmt: skip
            records[(str(rec.get("filter", "none")), int(rec["doc_id"]))] = rec
    if not records:
        raise DataError("no sample records", where=str(path))
    return _TaskSamples(task, path, records)


def _scalar_metrics(rec: dict[str, Any]) -> list[str]:
    names = rec.get("metrics") or [k for k in rec if k not in _NOT_METRICS]
    return [
        n for n in names if isinstance(rec.get(n), bool | int | float) and n not in _NOT_METRICS
    ]


def _pick_metric(available: list[str], wanted: str | None, where: str) -> str:
    if wanted is not None:
        if wanted not in available:
            raise DataError(f"metric {wanted!r} is not in the samples", where=where,
                            hint=f"available per-sample metrics: {', '.join(available) or '(none)'}")  # fmt: skip
        return wanted
    for name in PREFERRED_METRICS:
        if name in available:
            return name
    if not available:
        raise DataError("the samples carry no per-sample numeric metric", where=where)
    return available[0]


def import_lm_eval(
    base_dir: str | Path,
    finetuned_dir: str | Path,
    *,
    metric: str | None = None,
    tasks: list[str] | None = None,
) -> list[PairedProbe]:
    """Pair two lm-eval ``--log_samples`` result folders per task and per document.

    ``metric`` picks the per-sample metric (default: the first of ``acc``,
    ``exact_match``, ``prompt_level_strict_acc``... present); the others go to
    ``details``. Documents present in only one run are left out and counted in
    ``details["unpaired"]``; a document whose ``doc_hash`` differs between the runs means
    the two runs did not evaluate the same data, which is an error.
    """
    dirs = [Path(base_dir).expanduser(), Path(finetuned_dir).expanduser()]
    for d in dirs:
        if not d.is_dir():
            raise DataError("lm-eval output folder not found", where=str(d))
    files = [_sample_files(d) for d in dirs]
    for d, f in zip(dirs, files, strict=True):
        if not f:
            raise DataError("no samples_<task>_<date>.jsonl files", where=str(d),
                            hint="run lm-eval with --log_samples and --output_path")  # fmt: skip
    common = sorted(set(files[0]) & set(files[1]))
    if tasks is not None:
        missing = [t for t in tasks if t not in common]
        if missing:
            raise DataError(f"task(s) {missing} not in both runs", where=f"{dirs[0]} / {dirs[1]}",
                            hint=f"tasks in both: {', '.join(common) or '(none)'}")  # fmt: skip
        common = list(tasks)
    if not common:
        raise DataError(
            f"the runs share no task (base: {sorted(files[0])}, fine-tuned: {sorted(files[1])})",
            where=f"{dirs[0]} / {dirs[1]}",
        )
    reported = [_reported(d) for d in dirs]
    out: list[PairedProbe] = []
    for task in common:
        base_s = _read_samples(task, files[0][task])
        ft_s = _read_samples(task, files[1][task])
        filters = sorted({f for f, _ in base_s.records} & {f for f, _ in ft_s.records})
        for filt in filters:
            out.append(_pair(task, filt, base_s, ft_s, metric, reported))
    return out


def _pair(
    task: str,
    filt: str,
    base: _TaskSamples,
    ft: _TaskSamples,
    metric: str | None,
    reported: list[dict[str, dict[str, Any]]],
) -> PairedProbe:
    b_ids = {d for f, d in base.records if f == filt}
    f_ids = {d for f, d in ft.records if f == filt}
    ids = sorted(b_ids & f_ids)
    if not ids:
        raise DataError(
            f"task {task!r}: the runs share no doc_id", where=f"{base.path} / {ft.path}"
        )
    first = base.records[(filt, ids[0])]
    available = [m for m in _scalar_metrics(first) if m in ft.records[(filt, ids[0])]]
    chosen = _pick_metric(available, metric, str(base.path))
    name = task if filt == "none" else f"{task}/{filt}"
    outcomes = []
    for samples, rep in ((base, reported[0]), (ft, reported[1])):
        recs = [samples.records[(filt, d)] for d in ids]
        per = {m: np.array([float(r[m]) for r in recs]) for m in available}
        details: dict[str, Any] = {
            "source": str(samples.path),
            "unpaired": len((b_ids | f_ids) - set(ids)),
            "errors": 0,
            "invalid": 0,
            "kind": "binary" if set(np.unique(per[chosen])) <= {0.0, 1.0} else "continuous",
        }
        for m, values in per.items():
            details[m] = float(values.mean())
            if m != chosen:
                details[f"per_example_{m}"] = values.tolist()
        agg = rep.get(task, {})
        details["reported"] = {k: v for k, v in agg.items() if k.endswith(f",{filt}")}
        direction = (agg.get(_DIRECTIONS) or {}).get(chosen)
        if isinstance(direction, bool):
            details["higher_is_better"] = direction
        outputs = [_output_text(r) for r in recs]
        outcomes.append(
            outcome(name, chosen, per[chosen], [f"{task}:{d}" for d in ids], outputs, details)
        )
    for d in ids:
        hb = base.records[(filt, d)].get("doc_hash")
        hf = ft.records[(filt, d)].get("doc_hash")
        if hb and hf and hb != hf:
            raise DataError(
                f"task {task!r} doc_id {d}: the two runs evaluated different documents",
                where=f"{base.path} / {ft.path}",
                hint="run both models on the same task version, limit and data",
            )
    return PairedProbe(name, chosen, outcomes[0], outcomes[1])


def _output_text(rec: dict[str, Any]) -> str:
    """A short readable answer: the filtered response (generation) or the chosen choice index."""
    resps = rec.get("filtered_resps")
    if isinstance(resps, list) and resps and all(isinstance(r, list) for r in resps):
        # loglikelihood: [[logprob, is_greedy], ...] per choice -> argmax index
        try:
            return str(int(np.argmax([float(r[0]) for r in resps])))
        except (TypeError, ValueError, IndexError):
            return json.dumps(resps)[:200]
    if isinstance(resps, list) and resps:
        return str(resps[0])
    return ""


def run_lm_eval_tasks(
    model_dir: str | Path,
    tasks: list[str | dict[str, Any]],
    output_path: str | Path,
    *,
    limit: int | float | None = None,
    batch_size: int | str = 8,
    device: str = "cpu",
    model_args: dict[str, Any] | None = None,
    include_path: str | Path | None = None,
) -> Path:
    """Run lm-eval tasks on a local transformers folder with ``log_samples`` and save them.

    Needs the ``lm-eval`` package. ``tasks`` are lm-eval task names or task config dicts;
    ``include_path`` adds a folder of task YAML files. Returns the folder holding the
    ``results_*.json`` / ``samples_*.jsonl`` files, ready for :func:`import_lm_eval`.
    """
    try:
        import lm_eval
        from lm_eval.loggers import EvaluationTracker
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise TunecheckError(
            "running lm-eval tasks needs the `lm-eval` package", hint="pip install lm-eval"
        ) from None
    args = {"pretrained": str(model_dir), "dtype": "float32", **(model_args or {})}
    manager = TaskManager(include_path=str(include_path)) if include_path else None
    tracker = EvaluationTracker(output_path=str(output_path))
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=args,
        tasks=tasks,
        limit=limit,
        batch_size=batch_size,
        device=device,
        log_samples=True,
        evaluation_tracker=tracker,
        task_manager=manager,
    )
    if results is None:
        raise TunecheckError("lm-eval returned no results")
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return Path(output_path)
