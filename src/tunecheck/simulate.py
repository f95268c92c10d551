"""Simulated before/after outcomes with a known truth, run through the real decision code.

Each replicate draws per-example correctness for the baseline and the candidate on the
task, and for the base and fine-tuned model on every probe, then goes through exactly the
functions a run uses: :func:`~tunecheck.pipeline.scoring.evaluate_task` →
:func:`~tunecheck.pipeline.scoring.probe_result` → :func:`~tunecheck.pipeline.scoring.adjust_probes` →
:func:`~tunecheck.evaluate.final_verdict` (``decide`` plus the context qualifiers). The
share of DEPLOY / ITERATE / ABANDON over the replicates estimates how often the verdict
is right or wrong when the truth is known; each share comes with a Wilson interval of its
Monte-Carlo error.

Correlated answers: a share ``copy`` of the candidate's answers copy the baseline's
(fine-tunes mostly keep what the base model did); the others are drawn independently at
the rate that makes the candidate's true accuracy what the scenario says.

``python -m tunecheck.simulate`` is ``tunecheck simulate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from tunecheck.core.config import Parser, Thresholds, as_thresholds
from tunecheck.errors import TunecheckError
from tunecheck.probe_rules import DEFAULT_PROBE_N

DECISIONS = ("DEPLOY", "ITERATE", "ABANDON")


class SimulationError(TunecheckError):
    """A scenario that cannot be simulated (impossible rates)."""


@dataclass(frozen=True)
class ProbeScenario:
    """One probe: ``n`` items, the base model's true accuracy, the fine-tune's true relative change."""

    n: int = DEFAULT_PROBE_N
    base_rate: float = 0.6
    rel_change: float = 0.0
    copy: float = 0.8
    chance: float = 0.0


@dataclass(frozen=True)
class Goal:
    """``P(outcome) <= value`` (``at_most``) or ``>= value``."""

    outcome: str
    value: float
    at_most: bool = True

    def met(self, p: float) -> bool:
        return p <= self.value if self.at_most else p >= self.value

    def __str__(self) -> str:
        return f"P({self.outcome}) {'<=' if self.at_most else '>='} {self.value:g}"


@dataclass(frozen=True)
class Scenario:
    """A task comparison and its probes with a known truth."""

    name: str
    description: str = ""
    task_n: int = 100
    baseline_rate: float = 0.5
    gain: float = 0.0
    copy: float = 0.5
    probes: tuple[ProbeScenario, ...] = field(default_factory=lambda: (ProbeScenario(),) * 3)
    goal: Goal | None = None


def _probes(n: int | None, *changes: float, copy: float = 0.8) -> tuple[ProbeScenario, ...]:
    size = DEFAULT_PROBE_N if n is None else n
    return tuple(ProbeScenario(n=size, rel_change=c, copy=copy) for c in changes)


def builtin_scenarios(probe_n: int | None = None) -> dict[str, Scenario]:
    """The issue-13 scenarios (task 100 examples at 0.5, half the candidate's answers copied;
    three probes at 0.6, 80% of the fine-tune's answers copied), with ``probe_n`` items per probe."""
    return {
        "A": Scenario(
            "A",
            "no true task gain, probes unchanged",
            probes=_probes(probe_n, 0.0, 0.0, 0.0),
            goal=Goal("DEPLOY", 0.05),
        ),
        "B": Scenario(
            "B",
            "+20 pt true task gain, probes truly unchanged",
            gain=0.20,
            probes=_probes(probe_n, 0.0, 0.0, 0.0),
            goal=Goal("DEPLOY", 0.90, at_most=False),
        ),
        "C": Scenario(
            "C",
            "+20 pt true task gain, one probe truly -15% relative",
            gain=0.20,
            probes=_probes(probe_n, -0.15, 0.0, 0.0),
            goal=Goal("DEPLOY", 0.10),
        ),
        # 80% copying caps a drop at 20% of 0.6: the -30% probe copies half of the answers
        "D": Scenario(
            "D",
            "+20 pt true task gain, one probe truly -30% relative (half the answers copied)",
            gain=0.20,
            probes=(*_probes(probe_n, -0.30, copy=0.5), *_probes(probe_n, 0.0, 0.0)),
            goal=Goal("DEPLOY", 0.02),
        ),
    }


@dataclass
class SimulationResult:
    """Counts of each decision over ``reps`` replicates, with Wilson intervals."""

    scenario: Scenario
    reps: int
    counts: dict[str, int]
    confidence: float = 0.95

    def share(self, decision: str) -> float:
        return self.counts.get(decision, 0) / self.reps if self.reps else float("nan")

    def interval(self, decision: str) -> tuple[float, float]:
        """Wilson interval of the share (the Monte-Carlo error of this simulation)."""
        from scipy.stats import binomtest

        ci = binomtest(self.counts.get(decision, 0), self.reps).proportion_ci(
            confidence_level=self.confidence, method="wilson"
        )
        return float(ci.low), float(ci.high)

    @property
    def goal_met(self) -> bool | None:
        goal = self.scenario.goal
        return None if goal is None else goal.met(self.share(goal.outcome))

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": asdict(self.scenario),
            "reps": self.reps,
            "counts": self.counts,
            "shares": {d: self.share(d) for d in self.counts},
            "intervals": {d: list(self.interval(d)) for d in self.counts},
            "goal": str(self.scenario.goal) if self.scenario.goal else None,
            "goal_met": self.goal_met,
        }


def correlated_pair(
    rng: np.random.Generator, n: int, p_before: float, p_after: float, copy: float
) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes (before, after) with true rates ``p_before``/``p_after``; a share ``copy`` of
    the after-answers repeat the before-answers, the rest are drawn independently."""
    if not 0 <= copy < 1:
        raise SimulationError(f"copy share must be in [0, 1), not {copy}", where="copy")
    q = (p_after - copy * p_before) / (1 - copy)
    if not (-1e-12 <= q <= 1 + 1e-12) or not 0 <= p_before <= 1:
        raise SimulationError(
            f"a true rate of {p_after:.3f} after {p_before:.3f} is impossible when {copy:.0%} of the "
            "answers are copied",
            hint="lower the copy share or the effect",
        )
    before = rng.random(n) < p_before
    fresh = rng.random(n) < min(max(q, 0.0), 1.0)
    after = np.where(rng.random(n) < copy, before, fresh)
    return before.astype(float), after.astype(float)


def run_scenario(
    scenario: Scenario,
    *,
    reps: int = 1000,
    seed: int = 0,
    thresholds: Thresholds | None = None,
    bootstrap: int = 2000,
) -> SimulationResult:
    """Simulate ``reps`` runs of ``scenario`` through the real decision code."""
    from tunecheck.evaluate import final_verdict
    from tunecheck.examples import Example
    from tunecheck.pipeline.scoring import adjust_probes, evaluate_task, probe_result
    from tunecheck.probes.base import outcome
    from tunecheck.verdict_context import VerdictContext

    thresholds = as_thresholds(thresholds)
    if reps < 1:
        raise SimulationError("reps must be at least 1", where="reps")
    examples = [Example(id=f"t{i}", input=f"q{i}", reference="yes") for i in range(scenario.task_n)]
    parser = Parser()
    probe_ids = [[f"p{k}-{i}" for i in range(ps.n)] for k, ps in enumerate(scenario.probes)]
    context = VerdictContext()
    counts = dict.fromkeys(DECISIONS, 0)
    rng = np.random.default_rng(seed)
    for rep in range(reps):
        b, c = correlated_pair(
            rng,
            scenario.task_n,
            scenario.baseline_rate,
            scenario.baseline_rate + scenario.gain,
            scenario.copy,
        )
        outputs = {
            "base+prompt": ["yes" if x else "no" for x in b],
            "finetuned": ["yes" if x else "no" for x in c],
        }
        task = evaluate_task(
            "task",
            examples,
            outputs,
            metrics=["exact_match"],
            primary_metric="exact_match",
            parser=parser,
            candidate="finetuned",
            baselines=["base+prompt"],
            alpha=thresholds.alpha,
            n_resamples=bootstrap,
            seed=rep,
            keep_examples=False,
        )
        probes = []
        for k, ps in enumerate(scenario.probes):
            before, after = correlated_pair(
                rng, ps.n, ps.base_rate, ps.base_rate * (1 + ps.rel_change), ps.copy
            )
            details = {"chance": ps.chance, "kind": "binary"}
            name = f"probe{k + 1}"
            base_out = outcome(name, "accuracy", before, probe_ids[k], [], details)
            ft_out = outcome(name, "accuracy", after, probe_ids[k], [], details)
            probes.append(
                probe_result(
                    name, "accuracy", base_out, ft_out, thresholds, seed=rep, n_resamples=bootstrap
                )
            )
        probes = adjust_probes(probes, thresholds.alpha) if probes else probes
        verdict = final_verdict([task], probes, thresholds, context)
        # a DEPLOY still pending its blind check is not yet a DEPLOY (as for --fail-on iterate)
        counts[verdict.decision if not verdict.pending_review else "ITERATE"] += 1
    return SimulationResult(scenario, reps, counts)


def with_probe_n(scenario: Scenario, n: int) -> Scenario:
    """The same scenario with every probe resized to ``n`` items."""
    return replace(scenario, probes=tuple(replace(p, n=n) for p in scenario.probes))


def format_results(results: Sequence[SimulationResult]) -> str:
    """A plain-text table: scenario, replicates, P(decision) [95% MC interval], goal."""
    lines = []
    for r in results:
        s = r.scenario
        shares = "  ".join(
            f"P({d})={r.share(d):.3f} [{r.interval(d)[0]:.3f}, {r.interval(d)[1]:.3f}]"
            for d in DECISIONS
        )
        sizes = ",".join(str(p.n) for p in s.probes) or "none"
        lines.append(f"{s.name}: {s.description}")
        lines.append(f"   task n={s.task_n}, probes n={sizes}, {r.reps} reps")
        lines.append(f"   {shares}")
        if s.goal is not None:
            lines.append(f"   goal {s.goal}: {'met' if r.goal_met else 'NOT met'}")
    return "\n".join(lines)


def margin_reps(p: float, margin: float, z: float = 3.0) -> int:
    """Replicates so that ``z`` Monte-Carlo standard errors of a share near ``p`` fit in ``margin``."""
    return math.ceil(z * z * p * (1 - p) / margin**2)


# --------------------------------------------------------------------------- interval coverage


def _population_macro_f1(joint: np.ndarray) -> float:
    """Macro-F1 of an infinite sample with (prediction, gold) probabilities ``joint``."""
    tp = np.diag(joint)
    denom = joint.sum(axis=0) + joint.sum(axis=1)
    return float(np.mean(2 * tp / denom))


def _classification_model(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gold prior, and P(prediction | gold) for a baseline and a better candidate (k classes)."""
    prior = np.linspace(2.0, 1.0, k)
    prior /= prior.sum()

    def confusion(acc: float) -> np.ndarray:
        # errors lean towards class 0 (a majority-class bias, so the classes' F1s differ)
        wrong = np.linspace(2.0, 1.0, k)
        m = np.zeros((k, k))
        for g in range(k):
            w = wrong.copy()
            w[g] = 0
            m[:, g] = (1 - acc) * w / w.sum()
            m[g, g] = acc
        return m  # m[pred, gold]

    return prior, confusion(0.6), confusion(0.75)


def coverage(
    kind: str, *, reps: int = 400, n: int = 200, n_resamples: int = 1000, seed: int = 0
) -> float:
    """Share of ``reps`` simulated data sets whose 95% paired bootstrap interval covers the true
    difference, for ``binary``, ``continuous`` or ``macro_f1`` metrics.

    binary: baseline 0.6, candidate 0.7, half the candidate's answers copied. continuous:
    per-example scores ``b ~ Beta(2, 3)``, ``a = 0.7 b + 0.3 Beta(3, 2)`` (true difference
    0.06). macro_f1: 3 unbalanced classes, independent predictions at 0.6 and 0.75
    accuracy with errors biased to class 0; the truth is the population macro-F1 difference.
    """
    from tunecheck.stats import bootstrap_macro_f1_diff, bootstrap_mean_diff

    rng = np.random.default_rng(seed)
    hits = 0
    k = 3
    prior, conf_b, conf_a = _classification_model(k)
    truth_f1 = _population_macro_f1(conf_a * prior) - _population_macro_f1(conf_b * prior)
    for r in range(reps):
        if kind == "binary":
            b, a = correlated_pair(rng, n, 0.6, 0.7, 0.5)
            res = bootstrap_mean_diff(a, b, n_resamples=n_resamples, seed=r)
            truth = 0.1
        elif kind == "continuous":
            b = rng.beta(2, 3, n)
            a = 0.7 * b + 0.3 * rng.beta(3, 2, n)
            res = bootstrap_mean_diff(a, b, n_resamples=n_resamples, seed=r)
            truth = 0.3 * (0.6 - 0.4)
        elif kind == "macro_f1":
            gold = rng.choice(k, size=n, p=prior)
            u_a, u_b = rng.random(n), rng.random(n)
            cum_a, cum_b = conf_a.cumsum(axis=0), conf_b.cumsum(axis=0)
            pred_a = (u_a[:, None] > cum_a[:, gold].T).sum(axis=1)
            pred_b = (u_b[:, None] > cum_b[:, gold].T).sum(axis=1)
            res = bootstrap_macro_f1_diff(pred_a, pred_b, gold, k, n_resamples=n_resamples, seed=r)
            truth = truth_f1
        else:
            raise SimulationError(
                f"unknown metric kind {kind!r}", hint="binary, continuous or macro_f1"
            )
        hits += res.ci_low <= truth <= res.ci_high
    return hits / reps


if __name__ == "__main__":  # pragma: no cover - `python -m tunecheck.simulate`
    import sys

    from tunecheck.cli import main

    sys.argv = ["tunecheck", "simulate", *sys.argv[1:]]
    main()
