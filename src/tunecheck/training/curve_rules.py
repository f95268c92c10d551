"""The curve rules: one function per pattern, each returning what it found as numbers.

:func:`tunecheck.training.curves.diagnose` gathers the curves of a run into
:class:`Evidence`, applies these rules in order (:func:`choose_pattern`) and writes the prose;
nothing here formats a sentence. The rules, in the order they are applied (every threshold is
a module constant):

* **unstable** (:func:`find_instability`) - a NaN/inf loss or gradient norm; a training-loss
  spike (the loss jumps at least ``SPIKE_MIN_JUMP`` x above the median of the previous
  ``SPIKE_WINDOW`` points *and* its robust z-score, on log scale against that running
  median, is at least ``SPIKE_Z``); or divergence (the training loss ends, median of its
  last 3 points, at least ``DIVERGE_FACTOR`` x above its smoothed minimum).
* **no_eval** - fewer than two validation-loss points.
* **overfitting** (:func:`find_overfitting`) - every one of the last
  ``min(3, points after the minimum)`` validation-loss points lies more than the noise band
  above the minimum, and the training loss at the end is below its value at that minimum.
  The noise band is ``max(MIN_NOISE_BAND, 3 x sigma)`` on log scale, where sigma is a robust
  (MAD) estimate from second differences of the last half of the validation curve; with
  fewer than 4 points it is ``SHORT_CURVE_BAND``.
* **underfitting** (:func:`find_underfitting`) - the validation loss (the training loss when
  there are fewer than 4 validation points) is still falling over the last third of the run:
  its Theil-Sen slope there is at least ``STEEP_RATIO`` of the run's average slope, the fall
  is a real trend (one-sided Kendall tau p < ``TREND_P``) and it is worth at least
  ``MIN_TAIL_DROP`` of the loss over that third; or the loss is flat and high (less than
  ``FLAT_DROP`` relative fall over the whole run).
* **healthy** - none of the above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Pattern = Literal["healthy", "overfitting", "underfitting", "unstable", "no_eval"]

# ------------------------------------------------------------------ thresholds
SPIKE_WINDOW = 5
SPIKE_MIN_JUMP = 1.5
SPIKE_Z = 5.0
DIVERGE_FACTOR = 1.5
MIN_NOISE_BAND = 0.02
SHORT_CURVE_BAND = 0.10
STEEP_RATIO = 0.2
TREND_P = 0.10
MIN_TAIL_DROP = 0.01
FLAT_DROP = 0.10
LOSS_GAP_FACTOR = 2.0
HUGE_FIRST_LOSS = 30.0


@dataclass
class Curve:
    """One logged quantity over steps (finite values only; sorted, one value per step)."""

    steps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


EMPTY = Curve(np.array([]), np.array([]))


@dataclass(frozen=True)
class Evidence:
    """What the rules read: the curves of one run and where they were not finite."""

    train: Curve
    ev: Curve  # validation loss (the mean over evaluation sets at shared steps)
    train_bad: list[int]  # steps with a NaN/inf value
    eval_bad: list[int]
    grad_bad: list[int]

    @property
    def best_step(self) -> int | None:
        """The step of the lowest validation loss (the first on ties)."""
        return int(self.ev.steps[int(np.argmin(self.ev.values))]) if len(self.ev) else None

    @property
    def best_loss(self) -> float | None:
        return float(np.min(self.ev.values)) if len(self.ev) else None


# ------------------------------------------------------------------ numeric helpers


def robust_sigma(x: np.ndarray) -> float:
    """MAD-based standard deviation of white noise on ``x`` from its second differences."""
    if len(x) < 4:
        return 0.0
    d2 = np.diff(x, 2)
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(6))


def noise_band(curve: Curve) -> float:
    """Relative (log-scale) noise band of a validation curve."""
    if len(curve) < 4:
        return SHORT_CURVE_BAND
    logs = np.log(np.maximum(curve.values, 1e-12))
    half = logs[len(logs) // 2 :] if len(logs) >= 8 else logs
    return max(MIN_NOISE_BAND, 3.0 * robust_sigma(half))


def smooth(values: np.ndarray, window: int = 5) -> np.ndarray:
    """Running median."""
    if len(values) < window:
        return values.copy()
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    return np.array([np.median(padded[i : i + window]) for i in range(len(values))])


def value_at(curve: Curve, step: float) -> float | None:
    """The curve's value at the last logged step <= ``step`` (or its first value)."""
    if not len(curve):
        return None
    i = int(np.searchsorted(curve.steps, step, side="right")) - 1
    return float(curve.values[max(i, 0)])


def end_level(curve: Curve) -> float:
    """Where a curve ends: the median of its last 3 points."""
    return float(np.median(curve.values[-3:]))


@dataclass(frozen=True)
class Tail:
    """Trend of the last third of a curve."""

    ratio: float  # tail slope / average slope (1 = still falling as fast as on average)
    p: float  # one-sided Kendall tau p-value for a falling trend
    drop: float  # fall over the tail, as a fraction of the level where it starts
    start: int
    points: int


def tail_trend(curve: Curve) -> Tail | None:
    """Trend of the last third of a curve (at least its last 4 points)."""
    from scipy import stats

    s, v = curve.steps, curve.values
    if len(s) < 4 or s[-1] <= s[0]:
        return None
    span = s[-1] - s[0]
    mask = s >= s[-1] - span / 3
    if mask.sum() < 4:
        mask = np.arange(len(s)) >= len(s) - 4
    ts, tv = s[mask], v[mask]
    slope = float(stats.theilslopes(tv, ts).slope)
    tau = stats.kendalltau(ts, tv, alternative="less")
    p = float(tau.pvalue) if np.isfinite(tau.pvalue) else 1.0
    avg = (v[0] - v[-1]) / span
    ratio = -slope / avg if avg > 0 else 0.0
    # observed, not extrapolated: a straight line through a decaying curve overshoots
    # below zero; medians of the tail's first and last quarter resist single noisy points
    k = max(2, len(tv) // 4)
    start_level, last_level = float(np.median(tv[:k])), float(np.median(tv[-k:]))
    drop = (start_level - last_level) / start_level if start_level > 0 else 0.0
    return Tail(ratio=ratio, p=p, drop=drop, start=int(ts[0]), points=int(mask.sum()))


# ------------------------------------------------------------------ unstable


@dataclass(frozen=True)
class Spike:
    step: int
    value: float
    base: float  # running median of the previous points


@dataclass(frozen=True)
class Divergence:
    from_step: int
    low: float  # the smoothed minimum
    end: float  # median of the last 3 points


@dataclass(frozen=True)
class Instability:
    """Non-finite values per curve, spikes and divergence (any of them makes a run unstable)."""

    nonfinite: list[tuple[str, list[int]]]  # (what, steps), only curves that had some
    spikes: list[Spike]
    divergence: Divergence | None

    @property
    def first_bad(self) -> int:
        steps = [s for _, bad in self.nonfinite for s in bad] + [s.step for s in self.spikes]
        if self.divergence is not None:
            steps.append(self.divergence.from_step)
        return min(steps)


def find_spikes(curve: Curve) -> list[Spike]:
    """Training-loss spikes: a jump over the running median that is also a robust outlier."""
    if len(curve) < 4:
        return []
    logs = np.log(np.maximum(curve.values, 1e-12))
    resid, idx = [], []
    for i in range(3, len(logs)):
        base = np.median(logs[max(0, i - SPIKE_WINDOW) : i])
        resid.append(logs[i] - base)
        idx.append(i)
    r = np.array(resid)
    scale = 1.4826 * np.median(np.abs(r - np.median(r)))
    out = []
    for i, ri in zip(idx, r, strict=True):
        z = ri / scale if scale > 0 else math.inf
        if ri >= math.log(SPIKE_MIN_JUMP) and z >= SPIKE_Z:
            out.append(Spike(int(curve.steps[i]), float(curve.values[i]), math.exp(logs[i] - ri)))
    return out


def find_divergence(train: Curve) -> Divergence | None:
    """The training loss climbs back to ``DIVERGE_FACTOR`` x its smoothed minimum."""
    if len(train) < 4:
        return None
    smoothed = smooth(train.values)
    i_low = int(np.argmin(smoothed))
    end = end_level(train)
    if i_low < len(train) - 3 and end >= DIVERGE_FACTOR * smoothed[i_low]:
        return Divergence(int(train.steps[i_low]), float(smoothed[i_low]), end)
    return None


def find_instability(e: Evidence) -> Instability | None:
    """Rule 1: non-finite values, spikes or divergence."""
    nonfinite = [
        (what, steps)
        for what, steps in (
            ("training loss", e.train_bad),
            ("validation loss", e.eval_bad),
            ("gradient norm", e.grad_bad),
        )
        if steps
    ]
    spikes = find_spikes(e.train) if len(e.train) else []
    divergence = find_divergence(e.train)
    if not (nonfinite or spikes or divergence):
        return None
    return Instability(nonfinite, spikes, divergence)


# ------------------------------------------------------------------ overfitting


@dataclass(frozen=True)
class Overfitting:
    best_step: int
    best_loss: float
    last: float
    last_step: int
    band: float
    train_at_best: float | None
    train_end: float | None


def find_overfitting(e: Evidence) -> Overfitting | None:
    """Rule 3: the validation loss rises past its minimum by more than the noise band while
    the training loss keeps falling."""
    ev, train = e.ev, e.train
    if len(ev) < 2:
        return None
    band = noise_band(ev)
    i_min = int(np.argmin(ev.values))
    after = len(ev) - 1 - i_min
    if after < 1:
        return None
    tail = ev.values[-min(3, after) :]
    rises = np.log(tail / ev.values[i_min])
    train_at_best = value_at(train, ev.steps[i_min])
    train_end = end_level(train) if len(train) else None
    train_falls = train_at_best is None or (train_end is not None and train_end < train_at_best)
    if not (np.all(rises > band) and train_falls):
        return None
    return Overfitting(
        best_step=int(ev.steps[i_min]),
        best_loss=float(ev.values[i_min]),
        last=float(ev.values[-1]),
        last_step=int(ev.steps[-1]),
        band=band,
        train_at_best=train_at_best,
        train_end=train_end,
    )


# ------------------------------------------------------------------ underfitting


@dataclass(frozen=True)
class Trend:
    """The curve the underfitting rule reads, and how its last third moves."""

    basis_name: Literal["validation loss", "training loss"]
    tail: Tail | None


@dataclass(frozen=True)
class StillFalling:
    basis_name: str
    tail: Tail


@dataclass(frozen=True)
class FlatHigh:
    curves: list[tuple[str, float, float, float]]  # (name, relative fall, first, end)


def trend(e: Evidence) -> Trend:
    """The validation loss with at least 4 points, else the training loss, and its tail trend."""
    if len(e.ev) >= 4:
        return Trend("validation loss", tail_trend(e.ev))
    return Trend("training loss", tail_trend(e.train) if len(e.train) else None)


def find_underfitting(e: Evidence, t: Trend) -> StillFalling | FlatHigh | None:
    """Rule 4: still falling at the end, or flat and high (the latter wins when both hold)."""
    found: StillFalling | FlatHigh | None = None
    tail = t.tail
    if tail and tail.ratio >= STEEP_RATIO and tail.p < TREND_P and tail.drop >= MIN_TAIL_DROP:
        found = StillFalling(t.basis_name, tail)
    flat = []
    for curve, name in ((e.train, "training loss"), (e.ev, "validation loss")):
        if len(curve) >= 3:
            end = end_level(curve)
            fall = 1 - end / curve.values[0] if curve.values[0] > 0 else 0.0
            flat.append((name, fall, float(curve.values[0]), end))
    if flat and all(f[1] < FLAT_DROP for f in flat):
        found = FlatHigh(flat)
    return found


# ------------------------------------------------------------------ the order


def choose_pattern(
    e: Evidence,
    instability: Instability | None,
    overfitting: Overfitting | None,
    underfitting: StillFalling | FlatHigh | None,
) -> Pattern:
    """The rules in order: unstable, no_eval, overfitting, underfitting, healthy."""
    if instability is not None:
        return "unstable"
    if len(e.ev) < 2:
        return "no_eval"
    if overfitting is not None:
        return "overfitting"
    if underfitting is not None:
        return "underfitting"
    return "healthy"
