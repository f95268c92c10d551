"""tunecheck: did fine-tuning this language model actually help?

Runs the base model (with its best prompt) and the fine-tuned model on a locked,
held-out test set, scores both, checks for capability regressions, tests every
difference for significance and ends with a verdict: DEPLOY, ITERATE or ABANDON.

The public API is this package's names::

    from tunecheck import RunOptions, load_spec, run

    outcome = run(load_spec("tunecheck.yaml"), options=RunOptions(limit=50))
    print(outcome.result.verdict.label)

Heavy libraries (torch, transformers) are imported lazily by the modules that
need them, and the names below are resolved on first use, so ``import tunecheck``
stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_EXPORTS = {
    "run": "tunecheck.runner",
    "RunOptions": "tunecheck.runner",
    "RunOutcome": "tunecheck.runner",
    "load_spec": "tunecheck.spec",
    "Spec": "tunecheck.spec",
    "RunResult": "tunecheck.results",
    "Verdict": "tunecheck.results",
    "Example": "tunecheck.examples",
    "Task": "tunecheck.task",
    "metric": "tunecheck.metrics",
    "MetricScores": "tunecheck.metrics",
    "backend": "tunecheck.models",
    "Model": "tunecheck.models",
    "load_model": "tunecheck.models",
    "TunecheckError": "tunecheck.errors",
}

__all__ = [  # noqa: RUF022 - grouped as _EXPORTS
    "__version__",
    "run",
    "RunOptions",
    "RunOutcome",
    "load_spec",
    "Spec",
    "RunResult",
    "Verdict",
    "Example",
    "Task",
    "metric",
    "MetricScores",
    "backend",
    "Model",
    "load_model",
    "TunecheckError",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from tunecheck.errors import TunecheckError
    from tunecheck.examples import Example
    from tunecheck.metrics import MetricScores, metric
    from tunecheck.models import Model, backend, load_model
    from tunecheck.results import RunResult, Verdict
    from tunecheck.runner import RunOptions, RunOutcome, run
    from tunecheck.spec import Spec, load_spec
    from tunecheck.task import Task


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tunecheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
