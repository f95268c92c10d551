"""During training: a task-metric callback for Trainer/TRL, curve diagnosis, checkpoint ranking.

``from tunecheck.training import diagnose`` stays light; ``TunecheckCallback`` imports
transformers, so it is loaded only when asked for.
"""

from __future__ import annotations

from typing import Any

from tunecheck.training.curves import Diagnosis, diagnose, load_trainer_state, plot_curves

__all__ = ["Diagnosis", "TunecheckCallback", "diagnose", "load_trainer_state", "plot_curves"]


def __getattr__(name: str) -> Any:
    if name == "TunecheckCallback":
        from tunecheck.training.callback import TunecheckCallback

        return TunecheckCallback
    raise AttributeError(f"module 'tunecheck.training' has no attribute {name!r}")
