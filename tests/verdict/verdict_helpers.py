"""Task results built for the verdict tests (a clear metrics DEPLOY unless told otherwise)."""

from __future__ import annotations

import numpy as np

from tunecheck.examples import Example
from tunecheck.pipeline.scoring import evaluate_task
from tunecheck.spec import ParserSpec


def make_task(
    n=200, base_right=100, cand_right=150, *, slices=None, metrics=("exact_match",), seed=0
):
    """Binary task: candidate right on ``cand_right`` (a superset of the baseline's answers)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    base_ok = set(order[:base_right].tolist())
    cand_ok = set(order[:cand_right].tolist())
    examples = [
        Example(
            id=f"t{i}", input=f"q{i}", reference="yes", slices=tuple(slices(i)) if slices else ()
        )
        for i in range(n)
    ]
    outputs = {
        "base+prompt": ["yes" if i in base_ok else "no" for i in range(n)],
        "finetuned": ["yes" if i in cand_ok else "no" for i in range(n)],
    }
    return evaluate_task(
        "task", examples, outputs, metrics=list(metrics), primary_metric=metrics[0],
        parser=ParserSpec(), candidate="finetuned", baselines=["base+prompt"], n_resamples=2000,
    )  # fmt: skip
