"""Core probe types: a :class:`Probe` (examples + how to score them) and its :class:`ProbeOutcome`.

Built-in generated probes register with ``@probe("name", scoring=..., metric=...)``; the
registered object is a :class:`BuiltinProbe` whose ``generate(n, seed, **options)`` returns
the examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tunecheck.examples import Example
from tunecheck.registry import Registry

Scoring = Literal[
    "number",  # numeric answer match (last number in the output)
    "answer",  # reasoning answers: number, word among candidates, or list of numbers
    "ifeval",  # verifiable instructions (meta: instruction_id_list, kwargs)
    "multiple_choice",  # meta: choices, gold; loglikelihood or generated letter
    "metric",  # any metric registered in tunecheck.metrics, by name
]

Generator = Callable[..., list[Example]]


@dataclass(frozen=True)
class BuiltinProbe:
    """A registered, generated probe: deterministic examples from a seed, any size."""

    name: str
    generate: Generator
    scoring: Scoring
    metric: str
    description: str = ""


probes: Registry[BuiltinProbe] = Registry("probe", "tunecheck.probes")


def probe(name: str, *, scoring: Scoring, metric: str) -> Callable[[Generator], Generator]:
    """Register ``fn(n: int, seed: int, **options) -> list[Example]`` as a built-in probe."""

    def decorate(fn: Generator) -> Generator:
        doc = (fn.__doc__ or "").strip().splitlines()
        probes.register(name)(
            BuiltinProbe(name, fn, scoring, metric, description=doc[0] if doc else "")
        )
        return fn

    return decorate


@dataclass
class Probe:
    """A capability probe ready to run: its examples and how to score them.

    ``mode`` applies to multiple choice: ``loglikelihood``, ``generate`` or ``auto``
    (loglikelihood when the backend provides it). ``parser`` and ``prompt`` are used by
    ``metric`` scoring of user task files.
    """

    name: str
    examples: list[Example]
    scoring: Scoring
    metric: str
    mode: Literal["auto", "loglikelihood", "generate"] = "auto"
    source: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)


@dataclass
class ProbeOutcome:
    """One model's result on one probe, kept per example for paired statistics.

    ``per_example`` is aligned with ``example_ids``; ``value`` is its mean (the probe's
    metric). ``outputs`` are generated texts or the chosen answers. ``details`` holds the
    secondary figures (``acc_norm``, IFEval strict/loose levels, ``invalid`` count,
    ``errors`` count...).
    """

    name: str
    metric: str
    value: float
    per_example: np.ndarray
    example_ids: list[str]
    outputs: list[str]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.example_ids)


def outcome(
    name: str,
    metric: str,
    per_example: Any,
    example_ids: list[str],
    outputs: list[str],
    details: dict[str, Any] | None = None,
) -> ProbeOutcome:
    """Build a :class:`ProbeOutcome`, computing ``value`` as the mean of ``per_example``."""
    arr = np.asarray(per_example, dtype=float)
    value = float(arr.mean()) if arr.size else float("nan")
    return ProbeOutcome(name, metric, value, arr, list(example_ids), list(outputs), details or {})
