"""What a run produced before it becomes a result: loaded tasks and each contender's outputs.

Shared by the runner (which fills it), :mod:`tunecheck.evaluate` (which scores it), the
judge stage and k-fold runs (which pool several). Plain data: it imports no stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunecheck.examples import Example
from tunecheck.models.base import Generation

if TYPE_CHECKING:
    from tunecheck.spec import TaskSpec

__all__ = ["ContenderOutputs", "LoadedTask", "RunState"]


@dataclass
class LoadedTask:
    """A task's examples after the lock was verified."""

    spec: TaskSpec
    examples: list[Example]
    lock_hash: str | None = None
    verify_report: dict[str, Any] | None = None


@dataclass
class ContenderOutputs:
    """What one contender produced on one task, aligned with the task's examples."""

    contender: str
    task: str
    generations: list[Generation]

    @property
    def texts(self) -> list[str | None]:
        """Generated text per example; ``None`` where the backend failed (never scored as wrong)."""
        return [g.text if g.ok else None for g in self.generations]

    @property
    def samples(self) -> list[list[str] | None]:
        """Every sample per example (``n`` > 1 draws several); ``None`` where the backend failed."""
        return [list(g.texts) if g.ok else None for g in self.generations]

    @property
    def errors(self) -> int:
        return sum(not g.ok for g in self.generations)

    @property
    def completion_tokens(self) -> list[int | None]:
        """Output length in model tokens per example (of the text scored), where reported."""
        out: list[int | None] = []
        for g in self.generations:
            if not g.ok:
                out.append(None)
            elif len(g.texts) > 1:  # several samples: the count of the first, if known
                per_sample = (g.meta or {}).get("sample_completion_tokens")
                out.append(int(per_sample[0]) if per_sample else None)
            else:
                out.append(g.completion_tokens)
        return out


@dataclass
class RunState:
    """Everything a run produced, before it is turned into a result."""

    run_id: str
    tasks: list[LoadedTask] = field(default_factory=list)
    outputs: dict[tuple[str, str], ContenderOutputs] = field(default_factory=dict)
    model_calls: int = 0
    #: task name -> what the LLM judge concluded (tunecheck.judge.stage.JudgeOutcome)
    judge: dict[str, Any] = field(default_factory=dict)
    #: judge key -> cached judge model, opened (lazily) before any generation
    judge_models: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    """contender -> content fingerprint of its model (recorded in the result)"""
