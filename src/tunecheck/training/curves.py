"""Read a finished run's ``trainer_state.json`` and name its curve pattern.

``diagnose`` looks at the training loss, the validation loss (one or several
evaluation sets) and any ``eval_task/<metric>`` points logged by
:class:`~tunecheck.training.TunecheckCallback`, and answers like an experienced
engineer would: *healthy*, *overfitting*, *underfitting*, *unstable* or
*no_eval*, with the numbers behind the call and the checkpoint to keep.

The rules (one function per pattern, returning numbers) are in
:mod:`tunecheck.training.curve_rules`; this module reads the log, applies them and writes
the explanation.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from tunecheck.errors import DataError
from tunecheck.training.curve_rules import (
    EMPTY,
    HUGE_FIRST_LOSS,
    LOSS_GAP_FACTOR,
    Curve,
    Evidence,
    FlatHigh,
    Instability,
    Overfitting,
    Pattern,
    StillFalling,
    Trend,
    choose_pattern,
    end_level,
    find_instability,
    find_overfitting,
    find_underfitting,
    noise_band,
    trend,
)

REMINDER = (
    "A healthy loss curve is not proof that the task improved: loss measures next-token "
    "likelihood, not the answers you care about. Run `tunecheck run` to compare the "
    "fine-tuned model with the best prompted base model on the locked test set."
)

_EVAL_LOSS = re.compile(r"^eval_(?:(?P<name>.+)_)?loss$")
_NOT_METRICS = (
    "runtime",
    "samples_per_second",
    "steps_per_second",
    "num_tokens",
    "epoch",
    "seconds",
)
_LOWER_BETTER = ("loss", "perplexity", "ppl", "error", "wer", "cer", "mae", "mse", "rmse")
_NO_DIRECTION = ("entropy",)
_EVAL_COLOURS = [
    "tab:orange",
    "tab:green",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
]


# ------------------------------------------------------------------ the state


@dataclass
class TrainerState:
    """A parsed ``trainer_state.json`` plus what is known about the saved checkpoints.

    ``checkpoints`` maps step -> folder for checkpoint folders that really exist on
    disk (empty when only the JSON file was given and it sits outside a checkpoint).
    """

    log_history: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    checkpoints: dict[int, str] = field(default_factory=dict)

    @property
    def global_step(self) -> int:
        value = self.meta.get("global_step")
        if isinstance(value, int | float) and math.isfinite(value):
            return int(value)
        return max((int(e.get("step", 0)) for e in self.log_history), default=0)

    def series(self, key: str) -> tuple[Curve, list[int]]:
        """The finite points of ``key``, and the steps where it was NaN/inf."""
        points: dict[int, float] = {}
        bad: list[int] = []
        for i, entry in enumerate(self.log_history):
            if key not in entry:
                continue
            value = _number(entry[key])
            if value is None:
                continue
            step = _step(entry, i)
            if math.isfinite(value):
                points[step] = value  # a re-logged step (resume) keeps the later value
            else:
                bad.append(step)
        steps = sorted(points)
        return Curve(np.array(steps, dtype=float), np.array([points[s] for s in steps])), bad

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for entry in self.log_history:
            for key in entry:
                seen.setdefault(key, None)
        return list(seen)

    def train_loss_key(self) -> str | None:
        keys = self.keys()
        if "loss" in keys:
            return "loss"
        # some loops log the per-step loss as `train_loss`; the Trainer's final summary
        # entry also has `train_loss` (one value), which is not a curve
        if sum("train_loss" in e for e in self.log_history) > 1:
            return "train_loss"
        return None

    def eval_loss_keys(self) -> dict[str, str]:
        """Evaluation-set name ('' for plain ``eval_loss``) -> its loss key."""
        out = {}
        for key in self.keys():
            m = _EVAL_LOSS.match(key)
            if m and "/" not in key:
                out[m.group("name") or ""] = key
        return out

    def metric_keys(self) -> list[str]:
        """Other evaluation metrics: ``eval_accuracy``, ``eval_task/exact_match``..."""
        losses = set(self.eval_loss_keys().values())
        return [
            k
            for k in self.keys()
            if k.startswith("eval_")
            and k not in losses
            and not any(k.endswith(s) for s in _NOT_METRICS)
            and any(_number(e.get(k)) is not None for e in self.log_history)
        ]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "inf" written as strings by some loggers
        except ValueError:
            return None
    return None


def _step(entry: dict[str, Any], index: int) -> int:
    value = _number(entry.get("step"))
    return int(value) if value is not None and math.isfinite(value) else index


_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _checkpoint_dirs(folder: Path) -> dict[int, str]:
    out = {}
    if folder.is_dir():
        for child in folder.iterdir():
            m = _CHECKPOINT.match(child.name)
            if m and child.is_dir():
                out[int(m.group(1))] = str(child)
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text (byte {err.start})", where=str(path)) from None
    try:
        # Python's json accepts the bare NaN / Infinity that the Trainer writes
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"not valid JSON: {err.msg} (column {err.colno})",
            where=f"{path}:{err.lineno}",
            hint="a trainer_state.json cut short by a crash can be restored from the previous checkpoint",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("log_history"), list):
        raise DataError(
            "not a Trainer state: no `log_history` list",
            where=str(path),
            hint="give the trainer_state.json that transformers' Trainer writes into each checkpoint",
        )
    bad = [i for i, e in enumerate(data["log_history"]) if not isinstance(e, dict)]
    if bad:
        raise DataError(f"log_history[{bad[0]}] is not an object", where=str(path))
    return data


def load_trainer_state(path: str | Path) -> TrainerState:
    """Load a ``trainer_state.json``, a checkpoint folder, or an output folder of checkpoints.

    For an output folder the newest state wins: the one with the highest
    ``global_step`` (the top-level ``trainer_state.json`` written by
    ``trainer.save_state()`` on a tie).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            "path not found",
            where=str(path),
            hint="give a trainer_state.json, a checkpoint folder or the Trainer's output_dir",
        )
    if path.is_file():
        state_file = path
    else:
        candidates = (
            [path / "trainer_state.json"] if (path / "trainer_state.json").is_file() else []
        )
        for folder in sorted(_checkpoint_dirs(path).values()):
            if (Path(folder) / "trainer_state.json").is_file():
                candidates.append(Path(folder) / "trainer_state.json")
        if not candidates:
            raise DataError(
                "no trainer_state.json here, nor in any checkpoint-* folder",
                where=str(path),
                hint="the Trainer writes trainer_state.json into every checkpoint-N folder of output_dir",
            )
        loaded = [(c, _read_json(c)) for c in candidates]
        # max() keeps the first of equal steps: the top-level file is listed first
        state_file, data = max(loaded, key=lambda cd: _number(cd[1].get("global_step")) or 0)
        return _make_state(state_file, data)
    return _make_state(state_file, _read_json(state_file))


def _make_state(state_file: Path, data: dict[str, Any]) -> TrainerState:
    folder = state_file.resolve().parent
    output_dir = folder.parent if _CHECKPOINT.match(folder.name) else folder
    meta = {k: v for k, v in data.items() if k != "log_history"}
    return TrainerState(
        log_history=data["log_history"],
        meta=meta,
        source=str(state_file),
        checkpoints=_checkpoint_dirs(output_dir),
    )


# ------------------------------------------------------------------ the diagnosis


class MetricSummary(BaseModel):
    """First, last and best value of an evaluation metric over the run."""

    first: float
    last: float
    best: float | None = None
    best_step: int | None = None
    points: int
    higher_is_better: bool | None = None


class Diagnosis(BaseModel):
    """What the curves say, with the numbers behind it (see the module docs for the rules)."""

    pattern: Pattern
    headline: str
    best_step: int | None = Field(None, description="step with the lowest validation loss")
    best_eval_loss: float | None = None
    best_checkpoint: str | None = Field(
        None, description="checkpoint to keep (nearest saved to best_step)"
    )
    best_checkpoint_note: str | None = None
    final_step: int
    reasons: list[str]
    explanation: str
    actions: list[str] = Field(default_factory=list)
    also: list[str] = Field(default_factory=list, description="secondary patterns also present")
    eval_sets: list[str] = Field(default_factory=list)
    uses_load_best_model_at_end: bool | None = None
    best_metric: float | None = None
    best_model_checkpoint: str | None = None
    eval_task: dict[str, MetricSummary] = Field(default_factory=dict)
    eval_metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    best_task_step: int | None = None
    best_task_checkpoint: str | None = None
    reminder: str = REMINDER
    source: str | None = None


def _fmt(x: float) -> str:
    if x == 0 or 0.001 <= abs(x) < 10_000:
        return f"{x:.4g}"
    return f"{x:.3e}"


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _direction(key: str) -> bool | None:
    """True/False: higher/lower is better; None: no direction (entropy).

    A registered tunecheck metric (``eval_task/ter``) carries its own direction;
    other trainer keys are judged by name (loss, perplexity, error... are lower-better).
    """
    from tunecheck.metrics.base import METRIC_INFO

    registered = METRIC_INFO.get(key.removeprefix("eval_task/"))
    if registered is not None:
        return registered.higher_is_better
    name = key.lower()
    if any(t in name for t in _NO_DIRECTION):
        return None
    return not any(t in name for t in _LOWER_BETTER)


def _summary(curve: Curve, higher: bool | None) -> MetricSummary:
    values, steps = curve.values, curve.steps
    best = best_step = None
    if higher is not None:
        i = int(np.argmax(values) if higher else np.argmin(values))  # first best on ties
        best, best_step = float(values[i]), int(steps[i])
    return MetricSummary(
        first=float(values[0]),
        last=float(values[-1]),
        best=best,
        best_step=best_step,
        points=len(curve),
        higher_is_better=higher,
    )


def _eval_curve(state: TrainerState) -> tuple[Curve, dict[str, Curve], list[int]]:
    """The primary validation-loss curve (mean over sets at shared steps), per-set curves, bad steps."""
    sets: dict[str, Curve] = {}
    bad: list[int] = []
    for name, key in state.eval_loss_keys().items():
        curve, nonfinite = state.series(key)
        bad += nonfinite
        if len(curve):
            sets[name] = curve
    if not sets:
        return Curve(np.array([]), np.array([])), sets, bad
    if len(sets) == 1:
        return next(iter(sets.values())), sets, bad
    common = set.intersection(*(set(c.steps.tolist()) for c in sets.values()))
    if len(common) >= 2:
        steps = np.array(sorted(common))
        values = np.mean([c.values[np.searchsorted(c.steps, steps)] for c in sets.values()], axis=0)
        return Curve(steps, values), sets, bad
    # sets evaluated at different steps: use the most complete one
    return max(sets.values(), key=len), sets, bad


def _nearest_checkpoint(state: TrainerState, step: int) -> tuple[str | None, str | None]:
    """(checkpoint, note) for the saved checkpoint nearest to ``step``."""
    if state.checkpoints:
        saved = sorted(state.checkpoints)
        best = min(saved, key=lambda s: (abs(s - step), s))
        note = None if best == step else f"saved checkpoint nearest to step {step}"
        return state.checkpoints[best], note
    save_steps = _number(state.meta.get("save_steps"))
    # save_steps beyond the last step (the Trainer's default 500 in a short run) says nothing:
    # trainer_state.json does not record whether save_strategy was "no"
    if save_steps and 0 < save_steps <= state.global_step and math.isfinite(save_steps):
        every = int(save_steps)
        saved = list(range(every, state.global_step + 1, every))
        if state.global_step not in saved:
            saved.append(state.global_step)  # the Trainer also saves at the last step
        best = min(saved, key=lambda s: (abs(s - step), s))
        return (
            f"checkpoint-{best}",
            f"inferred from save_steps={every} (assumes save_strategy='steps'; check the "
            "folder still exists if save_total_limit was set)",
        )
    return None, None


def diagnose(state: TrainerState | str | Path) -> Diagnosis:
    """Name the curve pattern of a training run and explain it (rules:
    :mod:`tunecheck.training.curve_rules`)."""
    if not isinstance(state, TrainerState):
        state = load_trainer_state(state)
    train_key = state.train_loss_key()
    train, train_bad = state.series(train_key) if train_key else (EMPTY, [])
    _, grad_bad = state.series("grad_norm")
    ev, sets, eval_bad = _eval_curve(state)
    e = Evidence(train=train, ev=ev, train_bad=train_bad, eval_bad=eval_bad, grad_bad=grad_bad)

    instability = find_instability(e)
    overfitting = find_overfitting(e)
    t = trend(e)
    underfitting = find_underfitting(e, t)
    pattern = choose_pattern(e, instability, overfitting, underfitting)
    return _render(state, e, sets, pattern, instability, overfitting, t, underfitting)


# ------------------------------------------------------------------ the prose


def _say_instability(inst: Instability) -> list[str]:
    out = [
        f"{what} is NaN/inf at step {min(steps)}"
        + (f" ({len(steps)} logged points in all)" if len(steps) > 1 else "")
        for what, steps in inst.nonfinite
    ]
    for sp in inst.spikes[:3]:
        out.append(
            f"training loss spikes to {_fmt(sp.value)} at step {sp.step} ({sp.value / sp.base:.1f}x "
            f"the median {_fmt(sp.base)} of the previous points)"
        )
    if len(inst.spikes) > 3:
        out.append(f"... and {len(inst.spikes) - 3} more spikes")
    d = inst.divergence
    if d is not None:
        out.append(
            f"training loss diverges: from a smoothed minimum of {_fmt(d.low)} at "
            f"step {d.from_step} it climbs to {_fmt(d.end)} at the end "
            f"({d.end / d.low:.1f}x)"
        )
    return out


def _say_overfitting(o: Overfitting) -> str:
    text = (
        f"validation loss bottoms out at {_fmt(o.best_loss)} at step {o.best_step}, then rises "
        f"to {_fmt(o.last)} by step {o.last_step} ({_pct(o.last / o.best_loss - 1)}; noise "
        f"band ±{o.band * 100:.1f}%)"
    )
    if o.train_at_best is not None and o.train_end is not None:
        text += (
            f" while training loss keeps falling ({_fmt(o.train_at_best)} -> {_fmt(o.train_end)})"
        )
    return text


def _say_underfitting(u: StillFalling | FlatHigh) -> str:
    if isinstance(u, FlatHigh):
        return (
            "; ".join(
                f"{n} barely moves: {_fmt(a)} -> {_fmt(b)} ({_pct(-f)})" for n, f, a, b in u.curves
            )
            + " - flat and high"
        )
    tail = u.tail
    return (
        f"{u.basis_name} is still falling at the end: over its last {tail.points} points (from step "
        f"{tail.start}) it drops {tail.drop * 100:.1f}% at {tail.ratio:.2f}x the run's average rate "
        f"(Kendall trend p={tail.p:.3f})"
    )


def _render(
    state: TrainerState,
    e: Evidence,
    sets: dict[str, Curve],
    pattern: Pattern,
    instability: Instability | None,
    overfitting: Overfitting | None,
    t: Trend,
    underfitting: StillFalling | FlatHigh | None,
) -> Diagnosis:
    """Headline, reasons, actions and the checkpoint to keep, for the pattern the rules chose."""
    train, ev = e.train, e.ev
    final_step = state.global_step
    reasons: list[str] = []
    actions: list[str] = []
    also: list[str] = []

    # ---- summaries of other metrics
    task = {
        k.removeprefix("eval_task/"): _summary(c, _direction(k) is not False)
        for k in state.metric_keys()
        if k.startswith("eval_task/") and len(c := state.series(k)[0])
    }
    others = {
        k: _summary(c, _direction(k))
        for k in state.metric_keys()
        if not k.startswith("eval_task/") and len(c := state.series(k)[0])
    }

    best_metric = _number(state.meta.get("best_metric"))
    best_model_ckpt = state.meta.get("best_model_checkpoint") or None
    tracked = best_metric is not None or best_model_ckpt is not None
    uses_lbm = True if tracked else (False if len(ev) else None)

    # ---- best step by validation loss
    best_step, best_loss = e.best_step, e.best_loss
    best_ckpt, ckpt_note = (
        _nearest_checkpoint(state, best_step) if best_step is not None else (None, None)
    )
    if best_model_ckpt and best_step is not None:
        m = _CHECKPOINT.match(Path(str(best_model_ckpt)).name)
        if not state.checkpoints and m and int(m.group(1)) == best_step:
            best_ckpt, ckpt_note = (
                str(best_model_ckpt),
                "recorded by the Trainer as best_model_checkpoint",
            )

    best_task_step = best_task_ckpt = None
    if task:
        primary = next(iter(task))
        best_task_step = task[primary].best_step
        if best_task_step is not None:
            best_task_ckpt, _ = _nearest_checkpoint(state, best_task_step)

    if len(ev) >= 2:
        assert best_loss is not None
        reasons.append(
            f"validation loss ({len(ev)} points"
            + (
                f", mean of {len(sets)} evaluation sets: {', '.join(sorted(sets))}"
                if len(sets) > 1
                else ""
            )
            + f"): {_fmt(float(ev.values[0]))} at step {int(ev.steps[0])} -> lowest {_fmt(best_loss)} at "
            f"step {best_step} -> {_fmt(float(ev.values[-1]))} at step {int(ev.steps[-1])}"
        )
    if len(train) >= 2:
        reasons.append(
            f"training loss ({len(train)} points): {_fmt(float(train.values[0]))} at step "
            f"{int(train.steps[0])} -> {_fmt(float(train.values[-1]))} at step {int(train.steps[-1])}"
        )

    if pattern == "unstable":
        assert instability is not None
        headline = f"unstable training: trouble from step {instability.first_bad}"
        reasons = _say_instability(instability) + reasons
        actions += [
            "lower the learning rate (halve it) and use warmup (warmup_ratio=0.03-0.1)",
            "clip gradients (max_grad_norm=1.0) and check the data near that step for broken or huge examples",
            "use bf16 rather than fp16 if the loss became NaN (fp16 overflows)",
        ]
        if best_step is not None:
            actions.append(
                f"keep the checkpoint from before the trouble ({best_ckpt or f'step {best_step}'})"
            )
        if overfitting:
            also.append("overfitting")
    elif pattern == "no_eval":
        headline = "no validation loss logged: the curve cannot show over- or underfitting"
        reasons.insert(
            0,
            "log_history has "
            + (
                "only one validation-loss point"
                if len(ev) == 1
                else "no `eval_loss` (nor `eval_<set>_loss`) entries"
            ),
        )
        eval_every = max(1, final_step // 10) if final_step else 100
        actions += [
            f'pass an eval_dataset to the trainer and set eval_strategy="steps", eval_steps={eval_every} '
            "in TrainingArguments / SFTConfig (about 10 evaluations per run)",
            'to pick the best checkpoint by it: save_strategy="steps" with the same save_steps, '
            'load_best_model_at_end=True, metric_for_best_model="eval_loss"',
            "or add tunecheck's TunecheckCallback to log the task metric itself",
        ]
        if underfitting and t.basis_name == "training loss":
            also.append("underfitting")
            reasons.append(_say_underfitting(underfitting))
    elif pattern == "overfitting":
        assert overfitting is not None
        headline = f"overfitting after step {best_step}: keep {best_ckpt or f'the step-{best_step} weights'}"
        reasons.insert(0, _say_overfitting(overfitting))
        actions += [
            f"restore {best_ckpt or f'the weights from step {best_step}'} (lowest validation loss)",
            "train for fewer steps / epochs, or stop early (EarlyStoppingCallback with load_best_model_at_end=True)",
            "regularise: lower the learning rate, add weight decay or LoRA dropout, or add training data",
        ]
        for name, curve in sorted(sets.items()) if len(sets) > 1 else []:
            j = int(np.argmin(curve.values))
            reasons.append(
                f"eval set {name}: lowest {_fmt(float(curve.values[j]))} at step {int(curve.steps[j])}, "
                f"last {_fmt(float(curve.values[-1]))} ({_pct(float(curve.values[-1] / curve.values[j] - 1))})"
            )
    elif pattern == "underfitting":
        assert underfitting is not None
        headline = "underfitting: the loss has not settled; the model can still learn more"
        reasons.insert(0, _say_underfitting(underfitting))
        actions += [
            "train longer (more epochs / max_steps): the loss is still going down",
            "or raise the learning rate / LoRA rank (capacity) if it falls too slowly",
        ]
    else:
        headline = "healthy: both losses fell and settled"
        if t.tail is not None:
            reasons.append(
                f"{t.basis_name} is levelling off: from step {t.tail.start} to the end it moves "
                f"{-t.tail.drop * 100:+.1f}%, at {t.tail.ratio:.2f}x the run's average rate"
            )
        if len(ev) >= 2 and best_step is not None and best_step != int(ev.steps[-1]):
            assert best_loss is not None
            reasons.append(
                f"the last validation loss is {_pct(float(ev.values[-1]) / best_loss - 1)} from the lowest, "
                f"within the noise band (±{noise_band(ev) * 100:.1f}%)"
            )
        if best_step is not None:
            actions.append(
                f"keep {best_ckpt or f'the step-{best_step} weights'} (lowest validation loss)"
            )

    # ---- notes that matter whatever the pattern
    if 2 <= len(ev) < 4:
        reasons.append(
            f"only {len(ev)} evaluation points: too few to separate a trend from noise; evaluate more "
            "often (smaller eval_steps)"
        )
    if len(ev) >= 2 and len(train) >= 3:
        t_end, e_end = end_level(train), float(ev.values[-1])
        if e_end > 0 and t_end / e_end >= LOSS_GAP_FACTOR:
            reasons.append(
                f"training loss ({_fmt(t_end)}) is {t_end / e_end:.1f}x the validation loss ({_fmt(e_end)}): "
                "the two are computed differently (gradient accumulation summing, dropout, a different "
                "data mix); compare each curve with itself"
            )
    if len(train) >= 2 and train.values[0] > HUGE_FIRST_LOSS:
        reasons.append(
            f"the first training loss ({_fmt(float(train.values[0]))}) is far above any per-token "
            "cross-entropy at initialisation (ln of the vocabulary size, about 10-12): an unusual scale "
            "(a summed loss, a freshly initialised head); it is read as the start of the curve, not a spike"
        )
    later: list[str] = []
    for key, summary in others.items():
        if summary.best_step is not None and summary.points >= 2:
            reasons.append(
                f"{key}: {_fmt(summary.first)} -> {_fmt(summary.last)}, best {_fmt(summary.best or 0)} "
                f"at step {summary.best_step}"
            )
            if best_step is not None and summary.best_step > best_step and summary.higher_is_better:
                later.append(f"{key} (best at step {summary.best_step})")
    if pattern == "overfitting" and later:
        first_key = later[0].split(" ")[0]
        reasons.append(
            f"{', '.join(later)} kept improving after the validation-loss minimum: the loss rises "
            "partly because the model grows over-confident on what it gets wrong; if that metric is "
            "what matters, choose the checkpoint by it "
            f'(metric_for_best_model="{first_key.removeprefix("eval_")}")'
        )
    for name, summary in task.items():
        reasons.append(
            f"task metric {name}: {_fmt(summary.first)} -> {_fmt(summary.last)}, best {_fmt(summary.best or 0)} "
            f"at step {summary.best_step}"
        )
    if best_task_step is not None and best_task_step != best_step:
        actions.insert(
            0,
            f"prefer {best_task_ckpt or f'step {best_task_step}'}: best at the task metric "
            f"({next(iter(task))}), which is what you ship (lowest loss is at step {best_step})",
        )
    if tracked:
        reasons.append(
            f"the Trainer tracked the best checkpoint (best_metric={best_metric}, "
            f"best_model_checkpoint={best_model_ckpt}): metric_for_best_model / load_best_model_at_end was set"
        )
    elif len(ev) >= 2:
        reasons.append(
            "load_best_model_at_end was not used (best_metric is null): the final weights are the last "
            "step's, not the best"
        )
    if ckpt_note and best_ckpt:
        reasons.append(f"checkpoint to keep: {best_ckpt} ({ckpt_note})")

    return Diagnosis(
        pattern=pattern,
        headline=headline,
        best_step=best_step,
        best_eval_loss=best_loss,
        best_checkpoint=best_ckpt,
        best_checkpoint_note=ckpt_note,
        final_step=final_step,
        reasons=reasons,
        explanation=_explain(pattern, headline, reasons, actions),
        actions=actions,
        also=also,
        eval_sets=sorted(n or "eval" for n in sets),
        uses_load_best_model_at_end=uses_lbm,
        best_metric=best_metric,
        best_model_checkpoint=best_model_ckpt,
        eval_task=task,
        eval_metrics=others,
        best_task_step=best_task_step,
        best_task_checkpoint=best_task_ckpt,
        source=state.source,
    )


_MEANING = {
    "healthy": "Training and validation loss both came down and flattened out together, which is what a "
    "run that learned and generalised looks like.",
    "overfitting": "The model kept getting better at its training examples while getting worse on examples it "
    "never saw: past the validation minimum it memorises rather than generalises, so the later "
    "checkpoints are worse models even though their training loss looks better.",
    "underfitting": "The model had not finished learning when training stopped (or barely learned at all): "
    "the loss is still clearly improving, or it never moved much.",
    "unstable": "The optimisation misbehaved: the loss became non-finite, jumped sharply or climbed back up, "
    "usually a learning rate that is too high for the batch size, missing gradient clipping, fp16 "
    "overflow or a bad batch.",
    "no_eval": "Only the training loss was logged, and the training loss alone cannot tell memorising from "
    "learning.",
}


def _explain(pattern: str, headline: str, reasons: list[str], actions: list[str]) -> str:
    text = f"{headline[0].upper()}{headline[1:]}. {_MEANING[pattern]} "
    key = [r for r in reasons[:3]]
    if key:
        text += "Evidence: " + "; ".join(key) + ". "
    if actions:
        text += "What to do: " + "; ".join(actions[:3]) + "."
    return text.strip()


# ------------------------------------------------------------------ plotting


def plot_curves(state: TrainerState | str | Path, out_png: str | Path) -> Path:
    """Plot training and validation losses (and any ``eval_task/*`` metrics) to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(state, TrainerState):
        state = load_trainer_state(state)
    out = Path(out_png)
    task_keys = [k for k in state.metric_keys() if k.startswith("eval_task/")]
    fig = Figure(figsize=(8, 6.5 if task_keys else 4.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True) if task_keys else [fig.subplots()]
    ax = axes[0]
    values: list[float] = []
    train_key = state.train_loss_key()
    if train_key:
        curve, bad = state.series(train_key)
        ax.plot(curve.steps, curve.values, label="training loss", color="tab:blue", lw=1.2)
        values += curve.values.tolist()
        for step in bad:
            ax.axvline(step, color="red", ls=":", lw=1)
    colours = iter(_EVAL_COLOURS * 4)
    for name, key in state.eval_loss_keys().items():
        curve, bad = state.series(key)
        ax.plot(
            curve.steps,
            curve.values,
            color=next(colours),
            marker="o",
            ms=3,
            lw=1.2,
            label=f"validation loss {name}".strip(),
        )
        values += curve.values.tolist()
        for step in bad:
            ax.axvline(step, color="red", ls=":", lw=1)
    diagnosis = diagnose(state)
    if diagnosis.best_step is not None:
        ax.axvline(
            diagnosis.best_step,
            color="black",
            ls="--",
            lw=1,
            label=f"lowest val loss (step {diagnosis.best_step})",
        )
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")  # a huge first loss would flatten everything else
    ax.set_ylabel("loss")
    ax.set_title(diagnosis.headline, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    if task_keys:
        tax = axes[1]
        for key in task_keys:
            curve, _ = state.series(key)
            tax.plot(curve.steps, curve.values, marker="s", ms=3, label=key)
        tax.set_ylabel("task metric")
        tax.grid(alpha=0.3)
        tax.legend(fontsize=8)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out
