"""Rank a training run's saved checkpoints by the task metric on the validation split.

The checkpoint with the lowest loss is not necessarily the one that is best at the
task; this scores every ``checkpoint-*`` folder of an output directory (full model
folders, or LoRA adapters over the spec's base model) with the spec's metrics and
the candidate's prompt, through the generation cache, so a re-run is free.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunecheck.errors import TunecheckError
from tunecheck.requests import generation_params
from tunecheck.spec import Spec, load_spec
from tunecheck.training.curves import _direction, load_trainer_state
from tunecheck.training.validation import pick_task, validation_sample

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class CheckpointScore:
    """One checkpoint's task metrics on the validation sample."""

    checkpoint: str
    step: int
    kind: str  # "adapter" or "full"
    model: str
    metrics: dict[str, float]
    eval_loss: float | None = None
    errors: int = 0
    generated: int = 0
    seconds: float = 0.0
    rank: int = 0


@dataclass
class CheckpointRanking:
    """Checkpoints ordered best first by ``metric``."""

    metric: str
    higher_is_better: bool
    split: str
    examples: int
    scores: list[CheckpointScore]
    lowest_loss: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> CheckpointScore:
        return self.scores[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "split": self.split,
            "examples": self.examples,
            "best": self.best.checkpoint,
            "lowest_loss": self.lowest_loss,
            "notes": self.notes,
            "checkpoints": [asdict(s) for s in self.scores],
        }


def find_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` folder, by step."""
    out = Path(output_dir)
    if not out.is_dir():
        raise TunecheckError(
            "output folder not found", where=str(out), hint="give the Trainer's output_dir"
        )
    found = sorted(
        (int(m.group(1)), child)
        for child in out.iterdir()
        if child.is_dir() and (m := _CHECKPOINT.match(child.name))
    )
    if not found:
        raise TunecheckError(
            "no checkpoint-* folders here",
            where=str(out),
            hint="the Trainer saves them every save_steps into output_dir (save_strategy must not be 'no')",
        )
    return found


def _base_model(spec: Spec) -> str:
    """The base model folder for LoRA checkpoints: the candidate's (or a baseline's) hf base."""
    for contender in [spec.candidate_spec, *spec.baselines]:
        backend, sep, target = contender.model.partition(":")
        if sep and backend == "hf":
            return re.split(r"\+(?=[A-Za-z_]+=)", target)[0]
        if not sep:
            return contender.model
    raise TunecheckError(
        "LoRA checkpoints need a local base model, but no contender uses the `hf` backend",
        where="spec contenders",
        hint="add a contender with model: hf:PATH_TO_BASE",
    )


def _model_ref(folder: Path, spec: Spec) -> tuple[str, str]:
    if (folder / "adapter_config.json").exists():
        return f"hf:{_base_model(spec)}+adapter={folder}", "adapter"
    if (folder / "config.json").exists():
        return f"hf:{folder}", "full"
    raise TunecheckError(
        "neither a PEFT adapter (adapter_config.json) nor a model folder (config.json)",
        where=str(folder),
    )


def rank_checkpoints(
    output_dir: str | Path,
    spec: str | Path | Spec,
    *,
    split: str = "val",
    task: str | None = None,
    sample_size: int | None = None,
    metric: str | None = None,
    store: Any = None,
    on_checkpoint: Callable[[CheckpointScore], None] | None = None,
) -> CheckpointRanking:
    """Score every saved checkpoint on the task metric (validation split) and rank them.

    ``store`` is a run-store URL or object (default: the spec's store); ``False`` turns
    the generation cache off. ``sample_size`` limits the examples (seeded sample).
    """
    from tunecheck.models import load_model

    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    task_spec = pick_task(spec, task)
    from tunecheck.preflight import check_task_settings

    check_task_settings(spec, task_spec)  # before the first checkpoint is loaded
    metric = metric or task_spec.primary_metric or task_spec.metrics[0]
    if metric not in task_spec.metrics:
        raise TunecheckError(
            f"metric {metric!r} is not one of the task's metrics {task_spec.metrics}",
            where="--metric",
        )
    higher = _direction(metric) is not False
    checkpoints = find_checkpoints(output_dir)
    examples = validation_sample(task_spec, split, sample_size, spec.seed, where="--split")
    contender = spec.candidate_spec
    val_task = task_spec.to_task(examples)
    # the requests `tunecheck run` would send the candidate, one sample each
    requests = val_task.requests(
        generation_params(contender.generation, spec.seed, n=1), prompt=contender.prompt.build()
    )

    cache = None
    if store is not False:
        from tunecheck.store import open_store

        cache = (
            store
            if store is not None and not isinstance(store, str)
            else open_store(store or spec.store)
        )

    losses = _eval_losses(Path(output_dir))
    scores: list[CheckpointScore] = []
    for step, folder in checkpoints:
        ref, kind = _model_ref(folder, spec)
        t0 = time.perf_counter()
        model = load_model(ref, **contender.options)
        generated = 0
        try:
            if cache is not None:
                from tunecheck.models.cache import CachedModel

                model = CachedModel(model, cache)
            generations = model.generate(requests)
            generated = int(getattr(model, "calls", len(requests)))
        finally:
            model.close()
        outputs = [g.text if g.ok else None for g in generations]
        result = val_task.score(outputs)
        score = CheckpointScore(
            checkpoint=str(folder),
            step=step,
            kind=kind,
            model=ref,
            metrics={k: float(v.value) for k, v in result.items()},
            eval_loss=losses.get(step),
            errors=sum(not g.ok for g in generations),
            generated=generated,
            seconds=time.perf_counter() - t0,
        )
        scores.append(score)
        if on_checkpoint is not None:
            on_checkpoint(score)

    # best first; ties go to the earlier checkpoint (less drift from the base model)
    scores.sort(key=lambda s: ((-1 if higher else 1) * s.metrics[metric], s.step))
    for i, s in enumerate(scores, 1):
        s.rank = i
    with_loss = [(s.eval_loss, s) for s in scores if s.eval_loss is not None]
    lowest = min(with_loss, key=lambda pair: pair[0], default=(None, None))[1]
    notes = []
    if lowest is not None and lowest.checkpoint != scores[0].checkpoint:
        notes.append(
            f"the lowest eval loss is at {Path(lowest.checkpoint).name} ({lowest.eval_loss:.4g}), but "
            f"{Path(scores[0].checkpoint).name} is best at {metric}: keep the one that is best at the task"
        )
    if len(examples) < 100:
        notes.append(
            f"only {len(examples)} validation examples: differences of a few points between checkpoints "
            "may be noise; confirm the choice with `tunecheck run` on the test split"
        )
    return CheckpointRanking(
        metric=metric,
        higher_is_better=higher,
        split=split,
        examples=len(examples),
        scores=scores,
        lowest_loss=lowest.checkpoint if lowest else None,
        notes=notes,
    )


def _eval_losses(output_dir: Path) -> dict[int, float]:
    """eval_loss per step from the newest trainer_state.json, when there is one."""
    try:
        state = load_trainer_state(output_dir)
    except TunecheckError:
        return {}
    curve, _ = state.series("eval_loss")
    return {int(s): float(v) for s, v in zip(curve.steps, curve.values, strict=True)}
