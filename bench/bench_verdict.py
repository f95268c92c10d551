"""How much to trust the verdict: simulated error rates and bootstrap interval coverage.

Targets (issue 13): with the default probe size, scenario A P(DEPLOY) <= 0.05, B >= 0.90,
C <= 0.10, D (a probe truly at -30%) <= 0.02; the 95% paired bootstrap interval covers
the true difference 93-97% of the time for binary, continuous and macro-F1 metrics.
Slow (minutes): 2000 simulated runs per scenario, 4000 data sets per coverage check
(Monte-Carlo SE of a 95% coverage: 0.0034). ``BENCH_VERDICT_REPS`` scales both down.
"""

from __future__ import annotations

import os
import time


def main() -> bool:
    from tunecheck.simulate import builtin_scenarios, coverage, format_results, run_scenario

    scale = float(os.environ.get("BENCH_VERDICT_REPS", "1"))
    ok = True
    start = time.perf_counter()
    results = [
        run_scenario(s, reps=max(50, int(2000 * scale)), seed=7)
        for s in builtin_scenarios().values()
    ]
    print(format_results(results))
    ok &= all(r.goal_met for r in results)
    print(f"(scenarios: {time.perf_counter() - start:.0f} s)")
    reps = max(100, int(4000 * scale))
    for kind in ("binary", "continuous", "macro_f1"):
        start = time.perf_counter()
        cov = coverage(kind, reps=reps, n=200, n_resamples=2000, seed=2)
        met = 0.93 <= cov <= 0.97
        ok &= met
        print(
            f"coverage of the 95% paired bootstrap, {kind}: {cov:.3f} over {reps} data sets "
            f"(target 0.93-0.97: {'met' if met else 'MISSED'}; {time.perf_counter() - start:.0f} s)"
        )
    return ok
