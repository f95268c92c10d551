"""``TunecheckCallback``: measure the task metric while a Trainer / TRL trainer trains.

Every ``every_n_steps`` steps (and at each evaluation the Trainer runs) the model
being trained generates answers for a fixed, seeded sample of the task's
*validation* split, in place (no copy, no reload; eval mode during the
evaluation, train mode restored after), and the spec's metrics score them. The
scores are logged as ``eval_task/<metric>`` through the Trainer's own logging
(``trainer_state.json``, Weights & Biases, MLflow, TensorBoard see them next to
the loss), added to the metrics of the Trainer's evaluation (so
``metric_for_best_model="eval_task/<metric>"`` and ``EarlyStoppingCallback`` work
on them), and stored in the run store with the step and checkpoint.

This module imports transformers; ``import tunecheck`` does not import it.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from transformers import Trainer, TrainerCallback

from tunecheck.errors import TunecheckError
from tunecheck.requests import generation_params
from tunecheck.spec import Spec, load_spec
from tunecheck.training.curves import _direction
from tunecheck.training.validation import json_text, pick_task, validation_sample

#: evaluation time / training time the callback allows itself before it postpones an evaluation
DEFAULT_MAX_EVAL_FRACTION = 0.10
#: extra tokens allowed beyond the longest validation reference
REFERENCE_TOKEN_MARGIN = 8


@dataclass
class TaskPoint:
    """One task evaluation during training."""

    step: int
    metrics: dict[str, float]
    seconds: float
    checkpoint: str | None = None
    epoch: float | None = None


@dataclass
class _Timing:
    start: float | None = None
    end: float | None = None
    eval_seconds: float = 0.0
    evaluations: int = 0
    postponed: list[int] = field(default_factory=list)


class TunecheckCallback(TrainerCallback):
    """Task-metric evaluation, logging, early stopping and best-checkpoint selection during training.

    Args:
        spec: the eval spec (path or :class:`~tunecheck.spec.Spec`). Its task's lock gives
            the validation split; its candidate contender gives the prompt and decoding.
        every_n_steps: evaluate every N optimizer steps (``None``: only when the Trainer
            evaluates).
        sample_size: validation examples per evaluation (a fixed seeded sample; all when
            the split is smaller).
        split: the lock's split to use; the test split is refused.
        task: task name when the spec has several (default: the first).
        seed: sample seed (default: the spec's seed).
        early_stopping_patience: stop after this many evaluations without improvement of
            ``metric`` by more than ``early_stopping_min_delta``.
        select_best: point ``state.best_model_checkpoint`` at the saved checkpoint that is best
            at the task metric (so ``load_best_model_at_end=True`` loads it).
        metric: the metric that decides early stopping and the best checkpoint (default:
            the task's primary metric).
        store: run-store URL or :class:`~tunecheck.store.Store` (default: the spec's
            ``store``, ``TUNECHECK_STORE``, or ``.tunecheck/tunecheck.db``); ``False`` disables it.
        run_name: name of the training run in the store (default: ``args.run_name`` or
            the output folder's name).
        max_new_tokens: default: the longest validation reference in tokens plus a small
            margin, capped by the contender's ``max_new_tokens``.
        temperature, batch_size: generation overrides (``batch_size`` default ``auto``).
        on_trainer_evaluate: also evaluate whenever the Trainer evaluates.
        max_eval_fraction: the time budget: an evaluation that would push evaluation time
            over this share of the training time so far is postponed (``None`` disables it).
        verbose: print one line per evaluation and the timing summary.
    """

    def __init__(
        self,
        spec: str | Path | Spec,
        *,
        every_n_steps: int | None = 50,
        sample_size: int = 200,
        split: str = "val",
        task: str | None = None,
        seed: int | None = None,
        early_stopping_patience: int | None = None,
        early_stopping_min_delta: float = 0.0,
        select_best: bool = False,
        metric: str | None = None,
        store: Any = None,
        run_name: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        batch_size: int | str | None = "auto",
        on_trainer_evaluate: bool = True,
        max_eval_fraction: float | None = DEFAULT_MAX_EVAL_FRACTION,
        verbose: bool = True,
    ) -> None:
        self.spec = spec if isinstance(spec, Spec) else load_spec(spec)
        self.task = pick_task(self.spec, task)
        from tunecheck.preflight import check_task_settings

        check_task_settings(self.spec, self.task)  # before training starts, not at step N
        if every_n_steps is not None and every_n_steps < 1:
            raise TunecheckError(
                f"every_n_steps must be >= 1, got {every_n_steps}", where="TunecheckCallback"
            )
        if sample_size < 1:
            raise TunecheckError(
                f"sample_size must be >= 1, got {sample_size}", where="TunecheckCallback"
            )
        if early_stopping_patience is not None and early_stopping_patience < 1:
            raise TunecheckError("early_stopping_patience must be >= 1", where="TunecheckCallback")
        self.every_n_steps = every_n_steps
        self.split = split
        self.metric = metric or self.task.primary_metric or self.task.metrics[0]
        if self.metric not in self.task.metrics:
            raise TunecheckError(
                f"metric {self.metric!r} is not one of the task's metrics {self.task.metrics}",
                where="TunecheckCallback(metric=...)",
            )
        self.higher_is_better = _direction(self.metric) is not False
        self.patience = early_stopping_patience
        self.min_delta = float(early_stopping_min_delta)
        self.select_best = select_best
        self.on_trainer_evaluate = on_trainer_evaluate
        self.max_eval_fraction = max_eval_fraction
        self.verbose = verbose
        self.run_name = run_name
        self.batch_size = batch_size
        self.seed = self.spec.seed if seed is None else seed

        self.examples = validation_sample(
            self.task, split, sample_size, self.seed, where="TunecheckCallback(split=...)"
        )
        contender = self.spec.candidate_spec
        # the same prompt and parameters `tunecheck run` uses (tunecheck.requests), one sample
        self.prompt = contender.prompt.build()
        gen = contender.generation
        self._max_new_tokens_cap = gen.max_new_tokens
        self._max_new_tokens = max_new_tokens
        self.params = generation_params(
            gen, self.seed, n=1, max_new_tokens=max_new_tokens or None, temperature=temperature
        )
        self._store_arg = store
        self._store: Any = None

        self.history: list[TaskPoint] = []
        self.best: TaskPoint | None = None
        self.best_checkpoint: str | None = None
        self.saved: dict[int, str] = {}
        self.stopped_early_at: int | None = None
        self.timing = _Timing()
        self._bad_evals = 0
        self._trainer: Any = None
        self._hf_model: Any = None
        self._last_step: int | None = None

    # ------------------------------------------------------------------ helpers
    def _say(self, text: str) -> None:
        if self.verbose:
            print(f"[tunecheck] {text}", file=sys.stderr, flush=True)

    def _open_store(self) -> Any:
        if self._store is not None or self._store_arg is False:
            return self._store
        from tunecheck.store import open_store

        arg = self._store_arg
        self._store = (
            arg
            if arg is not None and not isinstance(arg, str)
            else open_store(arg or self.spec.store)
        )
        return self._store

    def _bind(self, model: Any, tokenizer: Any) -> Any:
        if tokenizer is None:
            raise TunecheckError(
                "the trainer passed no tokenizer to callbacks",
                where="TunecheckCallback",
                hint="give the trainer processing_class=tokenizer",
            )
        from tunecheck.models.hf import HFModel

        if self._hf_model is None or self._hf_model.model is not model:
            self._hf_model = HFModel.from_loaded(
                model, tokenizer, name="training", batch_size=self.batch_size
            )
            if self._max_new_tokens is None:
                self.params = replace(
                    self.params, max_new_tokens=self._derived_max_new_tokens(tokenizer)
                )
        return self._hf_model

    def _derived_max_new_tokens(self, tokenizer: Any) -> int:
        """Longest reference (in tokens) + margin: generating past it cannot raise the score."""
        lengths = []
        for e in self.examples:
            ref = e.reference if e.reference is not None else e.label
            if ref is None:
                return self._max_new_tokens_cap
            text = ref if isinstance(ref, str) else json_text(ref)
            lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
        return max(1, min(self._max_new_tokens_cap, max(lengths) + REFERENCE_TOKEN_MARGIN))

    def _find_trainer(self) -> Any:
        """The Trainer whose callback handler holds this callback (found on the call stack)."""
        if self._trainer is not None:
            return self._trainer
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            obj = frame.f_locals.get("self")
            if isinstance(obj, Trainer) and self in getattr(obj.callback_handler, "callbacks", []):
                self._trainer = obj
                break
            frame = frame.f_back
        return self._trainer

    def bind_trainer(self, trainer: Any) -> TunecheckCallback:
        """Attach to ``trainer`` explicitly (normally found automatically)."""
        self._trainer = trainer
        return self

    def _due(self, step: int) -> bool:
        if (
            self.max_eval_fraction is None
            or self.timing.start is None
            or not self.timing.evaluations
        ):
            return True
        # training time so far (wall time minus evaluation); the next evaluation is expected
        # to cost what the previous ones did on average
        trained = time.perf_counter() - self.timing.start - self.timing.eval_seconds
        expected = self.timing.eval_seconds / self.timing.evaluations
        return self.timing.eval_seconds + expected <= self.max_eval_fraction * trained

    # ------------------------------------------------------------------ the evaluation
    def evaluate(
        self, model: Any, tokenizer: Any, step: int, epoch: float | None = None
    ) -> TaskPoint:
        """Generate on the validation sample with ``model`` in place and score it."""
        hf = self._bind(model, tokenizer)
        t0 = time.perf_counter()
        task = self.task.to_task(self.examples)
        generations = hf.generate(task.requests(self.params, prompt=self.prompt))
        scores = task.score([g.text if g.ok else None for g in generations])
        seconds = time.perf_counter() - t0
        self.timing.eval_seconds += seconds
        self.timing.evaluations += 1
        metrics = {name: float(s.value) for name, s in scores.items()}
        return TaskPoint(step=step, metrics=metrics, seconds=seconds, epoch=epoch)

    def _run(
        self, args: Any, state: Any, control: Any, kwargs: dict[str, Any], *, budget: bool = True
    ) -> TaskPoint | None:
        step = int(state.global_step)
        if self._last_step == step:
            return self.history[-1] if self.history else None
        if not state.is_world_process_zero:
            return None
        if budget and not self._due(step):
            self.timing.postponed.append(step)
            return None
        model = kwargs.get("model")
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        point = self.evaluate(model, tokenizer, step, state.epoch)
        self._last_step = step
        # DefaultFlowCallback has already decided whether this step is saved
        if control.should_save:
            point.checkpoint = f"checkpoint-{step}"
        self.history.append(point)
        logs = {f"eval_task/{k}": v for k, v in point.metrics.items()}
        logs["eval_task/seconds"] = round(point.seconds, 3)
        trainer = self._find_trainer()
        if trainer is not None:
            # the base Trainer.log: appends to log_history and calls every callback's on_log
            # (integrations included); subclasses' log() may fold in their own buffered metrics
            Trainer.log(trainer, dict(logs))
        else:
            state.log_history.append({**logs, "epoch": state.epoch, "step": step})
        store = self._open_store()
        if store is not None:
            store.put_training_point(self._run_name(args), step, point.checkpoint, point.metrics)
        self._after_point(point, control)
        self._say(
            f"step {step}: "
            + ", ".join(f"{k}={v:.4f}" for k, v in point.metrics.items())
            + f" on {len(self.examples)} {self.split} examples ({point.seconds:.1f} s)"
        )
        return point

    def _run_name(self, args: Any) -> str:
        if self.run_name:
            return self.run_name
        name = (
            getattr(args, "run_name", None)
            or Path(str(getattr(args, "output_dir", "training"))).name
        )
        self.run_name = str(name)
        return self.run_name

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        best = self.best.metrics[self.metric]
        if self.higher_is_better:
            return value > best + self.min_delta
        return value < best - self.min_delta

    def _after_point(self, point: TaskPoint, control: Any) -> None:
        value = point.metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        if self._improved(value):
            self.best = point
            self._bad_evals = 0
        else:
            self._bad_evals += 1
        if self.patience is not None and self._bad_evals >= self.patience:
            control.should_training_stop = True
            self.stopped_early_at = point.step
            assert self.best is not None
            self._say(
                f"early stopping at step {point.step}: {self.metric} has not improved by more than "
                f"{self.min_delta} for {self._bad_evals} evaluations (best {self.best.metrics[self.metric]:.4f} "
                f"at step {self.best.step})"
            )

    # ------------------------------------------------------------------ Trainer events
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.timing = _Timing(start=time.perf_counter())
        self._find_trainer()
        model = kwargs.get("model")
        params = getattr(model, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        if getattr(args, "bf16", False) and first is not None and first.device.type == "cpu":
            # TRL turns bf16 on by default; on a CPU without bf16 units the autocast made a
            # 135M LoRA run (and every evaluation this callback generates) over 10x slower
            warnings.warn(
                "training runs with bf16 autocast on a CPU: unless this CPU has bf16 units this "
                "is many times slower than fp32; pass bf16=False to SFTConfig/TrainingArguments",
                RuntimeWarning,
                stacklevel=2,
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.every_n_steps and state.global_step % self.every_n_steps == 0:
            self._run(args, state, control, kwargs)
        return control

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> Any:
        if not self.on_trainer_evaluate:
            return control
        # the Trainer was asked to evaluate here: no time budget, the metrics must be present
        point = self._run(args, state, control, kwargs, budget=False)
        if point is not None and metrics is not None and point.step == state.global_step:
            # visible to metric_for_best_model="eval_task/<metric>" and EarlyStoppingCallback
            metrics.update({f"eval_task/{k}": v for k, v in point.metrics.items()})
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        step = int(state.global_step)
        folder = str(Path(args.output_dir) / f"checkpoint-{step}")
        self.saved[step] = folder
        if self.select_best and self.best is not None and self.best.step in self.saved:
            state.best_model_checkpoint = self.saved[self.best.step]
            state.best_metric = self.best.metrics[self.metric]
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.timing.end = time.perf_counter()
        if self.best is not None:
            self.best_checkpoint = self.saved.get(self.best.step)
            if self.best_checkpoint:
                where = self.best_checkpoint
            elif self.best.step == state.global_step:
                where = f"step {self.best.step}, the final weights"
            elif str(getattr(args, "save_strategy", "")).lower().endswith("no"):
                where = f"step {self.best.step} (not saved: save_strategy is 'no')"
            else:
                where = f"step {self.best.step} (not saved: make save_steps a multiple of every_n_steps)"
            self._say(f"best {self.metric} = {self.best.metrics[self.metric]:.4f} at {where}")
        if self.timing.postponed:
            self._say(
                f"{len(self.timing.postponed)} evaluation(s) postponed to keep evaluation under "
                f"{self.max_eval_fraction:.0%} of the time (steps {self.timing.postponed[:5]}...)"
            )
        self._say(self.timing_summary())
        return control

    # ------------------------------------------------------------------ reporting
    @property
    def total_seconds(self) -> float:
        if self.timing.start is None:
            return 0.0
        return (self.timing.end or time.perf_counter()) - self.timing.start

    @property
    def eval_fraction(self) -> float:
        """Evaluation time / training time (training time = wall time minus evaluation)."""
        train = self.total_seconds - self.timing.eval_seconds
        return self.timing.eval_seconds / train if train > 0 else 0.0

    def timing_summary(self) -> str:
        train = self.total_seconds - self.timing.eval_seconds
        return (
            f"task evaluation {self.timing.eval_seconds:.1f} s ({self.timing.evaluations} runs on "
            f"{len(self.examples)} examples) vs training {train:.1f} s: "
            f"{self.eval_fraction:.1%} of training time"
        )
