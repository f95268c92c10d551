"""The curve rules on their own: each returns the numbers it found, and the order decides."""

from __future__ import annotations

import numpy as np
import pytest

from tunecheck.training import curve_rules as r


def _curve(values, every=10):
    values = np.asarray(values, dtype=float)
    return r.Curve(np.arange(1, len(values) + 1) * every, values)


def _evidence(train, ev, **bad):
    return r.Evidence(
        train=_curve(train), ev=_curve(ev, every=50) if len(ev) else r.EMPTY,
        train_bad=bad.get("train", []), eval_bad=bad.get("eval", []), grad_bad=bad.get("grad", []),
    )  # fmt: skip


FALLING = 2.0 * np.exp(-np.arange(40) / 12) + 0.5


def test_a_planted_spike_is_found_with_its_running_median():
    train = FALLING.copy()
    train[25] = 6.0
    (spike,) = r.find_spikes(_curve(train))
    assert spike.step == 260 and spike.value == 6.0
    assert spike.base == pytest.approx(np.median(train[20:25]), rel=1e-12)
    assert r.find_spikes(_curve(FALLING)) == []


def test_overfitting_reports_the_minimum_and_the_rise():
    ev = [1.0, 0.8, 0.7, 0.65, 0.7, 0.8, 0.9]
    found = r.find_overfitting(_evidence(FALLING, ev))
    assert found is not None
    assert (found.best_step, found.best_loss, found.last, found.last_step) == (200, 0.65, 0.9, 350)
    assert found.band >= r.MIN_NOISE_BAND and found.train_end < found.train_at_best
    # the same validation curve with a rising training loss is not overfitting
    assert r.find_overfitting(_evidence(FALLING[::-1], ev)) is None


def test_underfitting_still_falling_and_flat():
    ev = 2.0 * np.exp(-np.arange(8) / 20) + 0.1  # still dropping steeply at the end
    e = _evidence(FALLING, ev)
    t = r.trend(e)
    found = r.find_underfitting(e, t)
    assert isinstance(found, r.StillFalling) and t.basis_name == "validation loss"
    assert found.tail.ratio >= r.STEEP_RATIO and found.tail.p < r.TREND_P
    flat = r.find_underfitting(e := _evidence(np.full(20, 2.0), np.full(6, 2.1)), r.trend(e))
    assert isinstance(flat, r.FlatHigh) and all(f[1] < r.FLAT_DROP for f in flat.curves)


def test_the_order_of_the_rules():
    ev = [1.0, 0.8, 0.7, 0.65, 0.7, 0.8, 0.9]
    e = _evidence(FALLING, ev, grad=[120])
    inst, over = r.find_instability(e), r.find_overfitting(e)
    assert inst is not None and inst.first_bad == 120 and over is not None
    assert r.choose_pattern(e, inst, over, None) == "unstable"
    assert r.choose_pattern(e, None, over, None) == "overfitting"
    assert r.choose_pattern(_evidence(FALLING, [1.0]), None, None, None) == "no_eval"
    assert r.choose_pattern(e, None, None, None) == "healthy"
