"""How a capability probe gates the verdict: relative intervals, floor/ceiling, the regression rule.

The rule (chosen with ``tunecheck simulate``; error rates in the README, "How much to
trust the verdict"):

* **regression** (blocks DEPLOY): the relative drop is past ``thresholds.warn`` *and*
  the paired test says it is beyond noise after Holm across the informative probes.
* **inconclusive** (does not block, stated in the verdict): the point estimate is past
  ``warn`` but the drop cannot be told from noise; the verdict names the probe size
  that would settle it.
* **uninformative** (never blocks, excluded from the Holm family): the base model is at
  or near chance on the probe (floor), or both models are at the ceiling.
* **pass**: everything else.

Blocking on a noisy point estimate (the old rule) made ~40% of harmless fine-tunes
ITERATE with three 100-item probes; the significance rule keeps false blocks near
alpha and reaches its power through the default probe size (:data:`DEFAULT_PROBE_N`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tunecheck.formatting import fmt_p, fmt_pct

# for annotations only: the spec reads DEFAULT_PROBE_N, so importing this module stays light
if TYPE_CHECKING:
    from tunecheck.metrics.base import MetricScores
    from tunecheck.probes.base import Probe
    from tunecheck.results import ProbeResult

Gate = Literal["pass", "regression", "inconclusive", "uninformative"]

DEFAULT_PROBE_N = 300
"""Items per probe by default: the size at which a -15% relative drop on a probe where the
base scores 0.6 is caught >= 90% of the time (see the README's simulated error rates)."""

CEILING = 0.98
"""Both models at or above this score: the probe is too easy to show a difference."""

NEAR_CHANCE = 0.10
"""A base score less than this share of the way from chance to 1 is at the floor."""

_CHUNK = 2_000_000


# --------------------------------------------------------------------------- chance level


def chance_level(probe: Probe) -> float | None:
    """The expected score of random guessing on ``probe`` (``None`` when unknown).

    Multiple choice: the mean of 1/number of choices. Reasoning answers: 1/number of
    candidate words for word answers, 0 for numbers and lists. Free numbers: 0. IFEval and
    other metrics: unknown (``None``; only a score of 0 is then the floor).
    """
    if not probe.examples:
        return None
    if probe.scoring == "multiple_choice":
        return float(np.mean([1.0 / max(1, len(ex.meta["choices"])) for ex in probe.examples]))
    if probe.scoring == "number":
        return 0.0
    if probe.scoring == "answer":
        levels = []
        for ex in probe.examples:
            if ex.meta.get("answer_type") == "word" and ex.meta.get("candidates"):
                levels.append(1.0 / len(ex.meta["candidates"]))
            else:
                levels.append(0.0)
        return float(np.mean(levels))
    return None


# --------------------------------------------------------------------------- floor / ceiling


@dataclass(frozen=True)
class Informativeness:
    """Whether a probe can show a regression of this model, and why not."""

    informative: bool
    reason: str = ""


def informativeness(
    base: float | None,
    finetuned: float | None,
    n: int,
    chance: float | None,
    *,
    alpha: float = 0.05,
    binary: bool = True,
) -> Informativeness:
    """Floor: the base model is at or near chance, i.e. not above chance beyond noise
    (one-sided binomial test) or using less than :data:`NEAR_CHANCE` of the range between
    chance and a perfect score; with an unknown chance level (``None``) only a score of 0.
    Ceiling: both models score at least :data:`CEILING`.

    A small probe on a capable model is not uninformative: its drops are *inconclusive*
    (see :func:`gate`), with the probe size that would settle them.
    """
    from scipy.stats import binomtest

    if base is None or n == 0:
        return Informativeness(True)
    floor = 0.0 if chance is None else chance
    shown = f"chance level {floor:.3f}" if chance is not None else "a score of 0"
    if base <= floor + 1e-12:
        return Informativeness(False, f"floor: the base model scores {base:.3f}, at {shown}")
    if binary and 0.0 < floor < 1.0 and 0.0 <= base <= 1.0:
        p_above = binomtest(round(base * n), n, floor, alternative="greater").pvalue
        if p_above >= alpha:
            return Informativeness(
                False,
                f"floor: the base model scores {base:.3f}, not above {shown} beyond noise "
                f"(binomial p={p_above:.2f}, n={n}); a regression cannot show",
            )
    # an unknown chance level (None) is not assumed to be 0: only a score of 0 is the floor then
    if chance is not None and floor < 1.0 and (base - floor) / (1.0 - floor) < NEAR_CHANCE:
        return Informativeness(
            False,
            f"floor: the base model scores {base:.3f}, near {shown} (less than "
            f"{NEAR_CHANCE:.0%} of the way from chance to a perfect score); a regression cannot show",
        )
    if finetuned is not None and base >= CEILING and finetuned >= CEILING:
        return Informativeness(
            False,
            f"ceiling: both models score at least {CEILING:.2f} ({base:.3f} -> {finetuned:.3f}); "
            "the probe is too easy to show a difference",
        )
    return Informativeness(True)


# --------------------------------------------------------------------------- relative interval


def _ratio_quantiles(num: np.ndarray, den: np.ndarray, alpha: float) -> tuple[float, float] | None:
    """Percentile interval of ``num/den - 1``; resamples with ``den == 0`` count as unbounded."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(den > 0, num / np.where(den > 0, den, 1.0) - 1.0, np.inf)
    rel = np.where((den <= 0) & (num <= 0), 0.0, rel)
    # no interpolation between order statistics: an unbounded (inf) resample stays unbounded
    lo = np.quantile(rel, alpha / 2, method="lower")
    hi = np.quantile(rel, 1 - alpha / 2, method="higher")
    return float(lo), float(hi)


def relative_interval(
    finetuned: MetricScores,
    base: MetricScores,
    *,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Paired percentile bootstrap of ``value(finetuned) / value(base) - 1``.

    The ratio is recomputed on every resample (not the absolute interval divided by the
    observed base value), so for a non-negative metric the lower bound is never below
    -100%. The upper bound is ``None`` (unbounded) when resampled base values reach 0.
    Metrics with negative scores have no meaningful relative change: ``(None, None)``.
    Both arguments must be paired on the same example ids.
    """
    from tunecheck.metrics.base import AdditiveStats, ClassCodes

    if finetuned.example_ids != base.example_ids:
        raise ValueError("relative_interval needs both models scored on the same example ids")
    n = finetuned.n
    if n == 0:
        return None, None
    rng = np.random.default_rng(seed)
    fc, bc = finetuned.corpus, base.corpus
    if isinstance(fc, ClassCodes) and isinstance(bc, ClassCodes):
        from tunecheck.stats import _common_codes, _macro_rows

        pa, pb, gold, k = _common_codes(fc, bc)
        num, den = [], []
        for rows in _chunks(n_resamples, 3 * n):
            idx = rng.integers(0, n, size=(rows, n))
            num.append(_macro_rows(pa[idx], gold[idx], k))
            den.append(_macro_rows(pb[idx], gold[idx], k))
        q = _ratio_quantiles(np.concatenate(num), np.concatenate(den), alpha)
    elif isinstance(fc, AdditiveStats) and isinstance(bc, AdditiveStats):
        from tunecheck.stats import _index_counts

        num, den = [], []
        for rows in _chunks(n_resamples, n):
            w = _index_counts(rng, rows, n)
            num.append(fc.score(w @ fc.stats))
            den.append(bc.score(w @ bc.stats))
        q = _ratio_quantiles(np.concatenate(num), np.concatenate(den), alpha)
    else:
        f = np.asarray(finetuned.per_example, dtype=float)
        b = np.asarray(base.per_example, dtype=float)
        if (f < 0).any() or (b < 0).any():
            return None, None
        # resample the counts of distinct (finetuned, base) score pairs: binary probes have 4
        pairs, counts = np.unique(np.stack([f, b], axis=1), axis=0, return_counts=True)
        if len(pairs) * n_resamples <= 50_000_000:
            draws = rng.multinomial(n, counts / n, size=n_resamples).astype(float)
            q = _ratio_quantiles(draws @ pairs[:, 0], draws @ pairs[:, 1], alpha)
        else:
            num, den = [], []
            for rows in _chunks(n_resamples, n):
                w = _index_counts(rng, rows, n)
                num.append(w @ f)
                den.append(w @ b)
            q = _ratio_quantiles(np.concatenate(num), np.concatenate(den), alpha)
    if q is None:
        return None, None
    lo, hi = q
    return (max(lo, -1.0) if math.isfinite(lo) else None), (hi if math.isfinite(hi) else None)


def _chunks(total: int, width: int) -> list[int]:
    size = max(1, _CHUNK // max(width, 1))
    return [min(size, total - start) for start in range(0, total, size)]


# --------------------------------------------------------------------------- the gate


def gate(p: ProbeResult) -> Gate:
    """The probe's role in the verdict (rule in the module docstring)."""
    if p.status == "uninformative":
        return "uninformative"
    if p.status == "ok" or p.abs_change is None or p.abs_change >= 0:
        return "pass"
    return "regression" if p.significant else "inconclusive"


def fmt_rel_ci(lo: float | None, hi: float | None) -> str:
    """``[-12.0%, +3.1%]``; an upper bound of ``None`` with a lower bound is unbounded."""
    if lo is None:
        return "[n/a]"
    upper = "+inf" if hi is None else f"{hi * 100:+.1f}%"
    return f"[{lo * 100:+.1f}%, {upper}]"


def probe_line(p: ProbeResult) -> str:
    """One reason line for the verdict, numbers included."""
    base = f"{p.base:.3f}" if p.base is not None else "n/a"
    ft = f"{p.finetuned:.3f}" if p.finetuned is not None else "n/a"
    g = gate(p)
    if g == "uninformative":
        return f"{p.name} probe {p.metric}: uninformative for this model ({p.note_uninformative})"
    p_show = p.p_adjusted if p.p_adjusted is not None else p.p_value
    ci = ""
    if p.rel_ci_low is not None:
        ci = f", 95% CI {fmt_rel_ci(p.rel_ci_low, p.rel_ci_high)}"
    text = (
        f"{p.name} probe {p.metric} {fmt_pct(p.rel_change)} ({p.status}; {base} -> {ft}, "
        f"{fmt_p(p_show)}, n={p.n}{ci})"
    )
    if g == "regression":
        text += ": a regression beyond noise (Holm across probes)"
    elif g == "inconclusive":
        need = f"; about {p.n_required} items would settle it" if p.n_required else ""
        text += f": inconclusive, the drop cannot be told from noise{need}"
    return text


def inconclusive_steps(probes: Sequence[ProbeResult]) -> list[str]:
    """Next steps for drops that could not be told from noise."""
    return [
        f"run the {p.name} probe on about {p.n_required} items (now {p.n}; `n:` in the probe's "
        f"spec) to confirm or rule out the {fmt_pct(p.rel_change)} drop"
        for p in probes
        if gate(p) == "inconclusive" and p.n_required
    ]


def finish_probe(
    result: ProbeResult,
    finetuned: MetricScores,
    base: MetricScores,
    *,
    alpha: float,
    n_resamples: int,
    seed: int,
    chance: float | None,
) -> ProbeResult:
    """Add the honest relative interval and the floor/ceiling check to a probe result."""
    from tunecheck.stats import pair_scores

    f, b = pair_scores(finetuned, base)
    update: dict[str, Any] = {"chance": chance}
    if result.rel_change is not None:
        lo, hi = relative_interval(f, b, alpha=alpha, n_resamples=n_resamples, seed=seed)
        update.update(rel_ci_low=lo, rel_ci_high=hi)
    # floor and ceiling are points of a higher-is-better score in [0, 1] (accuracy, a pass
    # rate); a length, an error count or a lower-is-better rate has neither
    bounded = getattr(f, "higher_is_better", True) and all(
        v is None or 0.0 <= v <= 1.0 for v in (result.base, result.finetuned)
    )
    info = (
        informativeness(
            result.base, result.finetuned, result.n, chance, alpha=alpha, binary=f.kind == "binary"
        )
        if bounded
        else Informativeness(True)
    )
    if not info.informative:
        update.update(status="uninformative", note_uninformative=info.reason)
    return result.model_copy(update=update)
