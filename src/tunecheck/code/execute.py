"""Execute every sample of every problem in the sandbox: what ran and how it ended."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tunecheck.code.extract import ExtractMode, build_program, extract_code
from tunecheck.code.problems import CodeProblem
from tunecheck.sandbox import ExecResult, Limits, Sandbox


@dataclass(frozen=True)
class SampleRun:
    """One sample of one problem: the program executed and its outcome."""

    program: str
    result: ExecResult

    @property
    def passed(self) -> bool:
        return self.result.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "status": self.result.status,
            "detail": self.result.detail,
            "seconds": round(self.result.seconds, 4),
        }


def make_sandbox(
    *,
    timeout: float = 10.0,
    memory_mb: int | None = 1024,
    workers: int | None = None,
    site_packages: bool = False,
) -> Sandbox:
    """A sandbox for test programs (see :mod:`tunecheck.sandbox`)."""
    return Sandbox(
        Limits(timeout=timeout, memory_mb=memory_mb), workers=workers, site_packages=site_packages
    )


def run_samples(
    problems: Sequence[CodeProblem],
    samples: Sequence[Sequence[str]],
    sandbox: Sandbox,
    *,
    extract: ExtractMode = "auto",
    progress: Callable[[int], None] | None = None,
) -> list[list[SampleRun]]:
    """``samples[i]`` are the outputs for ``problems[i]``; all run in parallel, results aligned."""
    programs: list[str] = []
    where: list[int] = []
    for i, (problem, outs) in enumerate(zip(problems, samples, strict=True)):
        for out in outs:
            programs.append(build_program(problem, extract_code(out, problem, extract)))
            where.append(i)
    results = sandbox.run_many(programs, progress=progress)
    grouped: list[list[SampleRun]] = [[] for _ in problems]
    for i, prog, res in zip(where, programs, results, strict=True):
        grouped[i].append(SampleRun(prog, res))
    return grouped
