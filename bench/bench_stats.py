"""Paired bootstrap and macro-F1 speed: tunecheck's versions vs the plain ways, in one run.

Targets: a paired bootstrap of 10,000 resamples over 10,000 binary outcomes in under
0.1 s (with the same interval as the index-matrix bootstrap, within Monte-Carlo
error); macro-F1 of 100,000 labels at least as fast as scikit-learn's, identical.
"""

from __future__ import annotations

import time

import numpy as np


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> bool:
    from sklearn.metrics import f1_score

    from tunecheck.metrics.base import macro_f1_codes
    from tunecheck.stats import bootstrap_macro_f1_diff, bootstrap_mean_diff

    rng = np.random.default_rng(0)
    n, b = 10_000, 10_000
    a = (rng.random(n) < 0.72).astype(float)
    base = np.where(rng.random(n) < 0.85, a, 1 - a)

    t_fast, fast = _best(
        lambda: bootstrap_mean_diff(a, base, n_resamples=b, seed=1, method="patterns")
    )
    t_index, index = _best(
        lambda: bootstrap_mean_diff(a, base, n_resamples=b, seed=2, method="index"), 1
    )
    print(f"paired bootstrap, binary, {b:,} resamples x {n:,} examples")
    print(
        f"  index matrix : {t_index:8.3f} s  CI [{index.ci_low:+.4f}, {index.ci_high:+.4f}]  se {index.se:.5f}"
    )
    print(
        f"  patterns     : {t_fast:8.3f} s  CI [{fast.ci_low:+.4f}, {fast.ci_high:+.4f}]  se {fast.se:.5f}"
    )
    print(
        f"  speed-up     : {t_index / t_fast:8.1f}x   target < 0.1 s: {'met' if t_fast < 0.1 else 'MISSED'}"
    )
    same = (
        abs(fast.ci_low - index.ci_low) < 0.2 * index.se
        and abs(fast.ci_high - index.ci_high) < 0.2 * index.se
    )

    k = 10
    gold = rng.choice(k, n, p=np.linspace(2, 0.2, k) / np.linspace(2, 0.2, k).sum())
    pa = np.where(rng.random(n) < 0.75, gold, rng.integers(-1, k, n))
    pb = np.where(rng.random(n) < 0.65, gold, rng.integers(-1, k, n))
    t_ff, ff = _best(
        lambda: bootstrap_macro_f1_diff(pa, pb, gold, k, n_resamples=b, seed=1, method="patterns"),
        1,
    )
    t_fi, fi = _best(
        lambda: bootstrap_macro_f1_diff(pa, pb, gold, k, n_resamples=1000, seed=2, method="index"),
        1,
    )
    print(f"paired bootstrap, macro-F1 ({k} classes), {n:,} examples")
    print(
        f"  index matrix : {t_fi * b / 1000:8.3f} s  (measured {t_fi:.3f} s for 1,000 resamples, scaled)  "
        f"CI [{fi.ci_low:+.4f}, {fi.ci_high:+.4f}]"
    )
    print(f"  patterns     : {t_ff:8.3f} s  CI [{ff.ci_low:+.4f}, {ff.ci_high:+.4f}]")
    print(f"  speed-up     : {t_fi * b / 1000 / t_ff:8.1f}x")

    m = 100_000
    y = rng.integers(0, 20, m)
    p = np.where(rng.random(m) < 0.6, y, rng.integers(0, 20, m))
    t_sk, f_sk = _best(lambda: f1_score(y, p, average="macro"))
    t_us, f_us = _best(lambda: macro_f1_codes(p, y, 20))
    ys, ps = np.array([f"c{v}" for v in y]), np.array([f"c{v}" for v in p])
    t_sks, _ = _best(lambda: f1_score(ys, ps, average="macro"))
    print(f"macro-F1 of {m:,} labels (20 classes)")
    print(
        f"  sklearn f1_score : {t_sk * 1000:8.2f} ms  (string labels: {t_sks * 1000:.1f} ms)  = {f_sk:.12f}"
    )
    print(f"  macro_f1_codes   : {t_us * 1000:8.2f} ms  = {f_us:.12f}")
    print(f"  speed-up         : {t_sk / t_us:8.1f}x   identical: {abs(f_sk - f_us) < 1e-12}")
    return bool(t_fast < 0.1 and same and t_us <= t_sk and abs(f_sk - f_us) < 1e-12)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
