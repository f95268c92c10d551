"""``pass@k``: run every sample's tests in the sandbox; Chen et al.'s unbiased estimator.

Any ``pass@K`` name is a metric (``pass@1``, ``pass@5``...). Per problem the score is
the estimated chance that at least one of ``K`` samples passes, from all ``n`` samples
drawn (``n >= K``): a continuous per-example score, so paired comparisons use the
sign-flip permutation test and the paired bootstrap interval (with ``n = 1``,
``pass@1`` is 0/1 and McNemar's test applies). Samples are executed once per scoring
and shared by every pass@k metric; what ran is kept per sample in
``details["executions"]`` of the smallest-k metric.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from tunecheck.code.execute import SampleRun, make_sandbox, run_samples
from tunecheck.code.passk import pass_at_k
from tunecheck.code.problems import problem_of
from tunecheck.core.config import as_code_settings
from tunecheck.errors import SpecError
from tunecheck.examples import Example
from tunecheck.metrics.base import METRICS, MetricFn, MetricScores, ScoringContext


def _executions(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> list[list[SampleRun]]:
    code = as_code_settings(ctx.code)
    problems = [problem_of(ex) for ex in examples]
    samples = ctx.samples if ctx.samples is not None else [[o] for o in outputs]
    with make_sandbox(
        timeout=code.timeout,
        memory_mb=code.memory_mb,
        workers=code.workers,
        site_packages=code.site_packages,
    ) as sandbox:
        ctx.cache["code_isolation"] = sandbox.isolation
        return run_samples(problems, samples, sandbox, extract=code.extract)


@METRICS.register_family(r"pass@([1-9][0-9]*)", "pass@K")
def pass_at_k_metric(match: re.Match[str]) -> MetricFn:
    """The ``pass@K`` metric for the ``K`` in its name."""
    k = int(match.group(1))

    def score(
        outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
    ) -> MetricScores:
        runs = ctx.cached("code_executions", lambda: _executions(outputs, examples, ctx))
        per_example = []
        for ex, sample_runs in zip(examples, runs, strict=True):
            n = len(sample_runs)
            if n < k:
                raise SpecError(
                    f"pass@{k} needs at least {k} samples per problem, example {ex.id!r} has {n}",
                    where="task.metrics",
                    hint=f"draw n >= {k} samples (generation: {{n: {k}, temperature: 0.8}}) or lower k",
                )
            per_example.append(pass_at_k(n, sum(r.passed for r in sample_runs), k))
        details: dict[str, object] = {
            "k": k,
            "samples": int(sum(len(r) for r in runs)),
            "passed_samples": int(sum(r.passed for rs in runs for r in rs)),
            "failures": _failure_counts(runs),
        }
        iso = ctx.cache.get("code_isolation")
        if iso is not None:
            details["sandbox"] = iso.to_dict()
            if iso.warnings:
                details["warnings"] = list(iso.warnings)
        if not ctx.cache.get("code_executions_reported"):
            ctx.cache["code_executions_reported"] = True
            details["executions"] = {
                ex.id: [r.to_dict() for r in rs] for ex, rs in zip(examples, runs, strict=True)
            }
        all_binary = all(len(rs) == 1 for rs in runs)
        return MetricScores(
            name=f"pass@{k}",
            value=float(np.mean(per_example)) if per_example else float("nan"),
            per_example=np.asarray(per_example, dtype=float),
            example_ids=[ex.id for ex in examples],
            kind="binary" if all_binary else "continuous",
            details=details,
        )

    return score


def _failure_counts(runs: Sequence[Sequence[SampleRun]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rs in runs:
        for r in rs:
            if not r.passed:
                counts[r.result.status] = counts.get(r.result.status, 0) + 1
    return dict(sorted(counts.items()))
