"""Results over time: `tunecheck runs`, `history` and `compare` on a store of many runs.

Builds, with the library's own scoring, RUNS stored runs of N examples on one lock (a
candidate that improves, then regresses), and two runs of BIG examples; times the run
listing (every stored result parsed), the history (one paired test per run against the
last DEPLOY, 10,000 bootstrap resamples each) and an example-by-example comparison of the
two big runs. Target: the history of RUNS runs in under TARGET_S seconds.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

RUNS, N, BIG = 12, 2_000, 10_000
TARGET_S = 10.0


def _store_run(store, n: int, acc: float, seed: int, lock: str) -> str:
    from tunecheck.examples import Example
    from tunecheck.pipeline.scoring import evaluate_task
    from tunecheck.results import RunResult
    from tunecheck.spec import ParserSpec
    from tunecheck.verdict import decide

    rng = random.Random(seed)
    examples = [Example(id=f"e{i:05d}", input=f"q{i}", reference=f"a{i}") for i in range(n)]
    outs = {
        "finetuned": [f"a{i}" if rng.random() < acc else "x" for i in range(n)],
        "base": [f"a{i}" if rng.random() < 0.5 else "x" for i in range(n)],
    }
    task = evaluate_task(
        "tickets", examples, outs, metrics=["exact_match"], primary_metric="exact_match",
        parser=ParserSpec(), candidate="finetuned", baselines=["base"], n_resamples=1000,
    )  # fmt: skip
    run_id = store.create_run(name="tickets", spec_hash="0" * 64, lock_hash=lock)
    from tunecheck.spec import Thresholds

    result = RunResult(run_id=run_id, lock_hash=lock, candidate="finetuned", tasks=[task],
                       verdict=decide([task], [], Thresholds()))  # fmt: skip
    store.finish_run(run_id, status="completed", verdict=result.verdict.decision,
                     result=result.model_dump(mode="json"))  # fmt: skip
    return run_id


def main() -> bool:
    from tunecheck.history import compare_runs, history, run_summaries
    from tunecheck.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'runs.db'}")
        accs = [0.6 + 0.02 * i for i in range(RUNS - 2)] + [0.55, 0.5]
        for i, acc in enumerate(accs):
            _store_run(store, N, acc, i, "a" * 64)
        start = time.perf_counter()
        rows = run_summaries(store, limit=None)
        t_runs = time.perf_counter() - start
        start = time.perf_counter()
        report = history(store, task="tickets")
        t_hist = time.perf_counter() - start
        print(f"runs: {len(rows)} runs of {N:,} examples listed in {t_runs:.2f} s")
        print(f"history: {len(report.entries)} runs, {len(report.regressions)} flagged "
              f"worse than the last DEPLOY, in {t_hist:.2f} s (target < {TARGET_S:.0f} s)")  # fmt: skip
        big = Path(tmp) / "big.db"
        store = open_store(f"sqlite:///{big}")
        a = _store_run(store, BIG, 0.8, 100, "b" * 64)
        b = _store_run(store, BIG, 0.78, 101, "b" * 64)
        start = time.perf_counter()
        rc = compare_runs(store, a, b)
        t_cmp = time.perf_counter() - start
        print(f"compare: two runs of {BIG:,} examples, {len(rc.flips.broken)} broken / "
              f"{len(rc.flips.fixed)} fixed, p={rc.comparison.p_value:.3g}, in {t_cmp:.2f} s")  # fmt: skip
        # wall-clock timings: say how busy the machine was, so a reader can judge them
        print(f"(load average over the last minute: {os.getloadavg()[0]:.2f})")
    return t_hist < TARGET_S


if __name__ == "__main__":
    main()
