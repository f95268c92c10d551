"""One :class:`Task`: examples, how to render them, how to read and score the answers.

A spec task (``tunecheck run``), the training callback's validation sample, checkpoint ranking
and every generated capability probe are all a ``Task``: their requests come from
:meth:`Task.requests` (the one request builder, :mod:`tunecheck.requests`) and their answers
are scored by :meth:`Task.score` (the one scoring path, :func:`tunecheck.metrics.score_outputs`).
A probe is a task whose prompt is fixed (``Task.prompt``); a spec task is rendered with each
contender's own prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunecheck.core.config import Parser, ParserLike, as_parser
from tunecheck.examples import Example
from tunecheck.metrics import MetricScores, score_outputs
from tunecheck.models.base import GenerationParams, GenerationRequest
from tunecheck.prompts import Prompt
from tunecheck.requests import render_requests


@dataclass(frozen=True)
class Task:
    """What to ask and how to score the answers.

    ``metrics`` are registered metric names (the first is reported first); ``parser`` turns
    text into predictions; ``prompt`` renders the examples when the caller brings none (a
    probe's fixed prompt); ``metric_options`` maps a metric to its options; ``code`` holds a
    code task's settings (pass@k).
    """

    name: str
    examples: Sequence[Example]
    metrics: Sequence[str]
    parser: Parser = field(default_factory=Parser)
    prompt: Prompt | None = None
    json_schema: dict[str, Any] | None = None
    metric_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    code: Any = None
    where: str = "task.metrics"

    @classmethod
    def of(
        cls,
        name: str,
        examples: Sequence[Example],
        metrics: Sequence[str],
        parser: ParserLike | None = None,
        **fields: Any,
    ) -> Task:
        """A task from any parser object (the core :class:`Parser` or the spec's model)."""
        return cls(name, examples, metrics, as_parser(parser) if parser else Parser(), **fields)

    def requests(
        self, params: GenerationParams, prompt: Prompt | None = None
    ) -> list[GenerationRequest]:
        """One request per example, rendered with ``prompt`` (else the task's own, else the
        bare input as a user turn)."""
        return render_requests(prompt or self.prompt or Prompt(), self.examples, params)

    def score(
        self,
        outputs: Sequence[str | None],
        *,
        metrics: Sequence[str] | None = None,
        samples: Sequence[Sequence[str] | None] | None = None,
    ) -> dict[str, MetricScores]:
        """Score outputs aligned with the examples (``None``: a backend error, left out and
        counted in ``details["errors"]``); ``metrics`` narrows the task's list."""
        return score_outputs(
            list(self.metrics if metrics is None else metrics),
            outputs,
            self.examples,
            self.parser,
            json_schema=self.json_schema,
            options=self.metric_options,
            where=self.where,
            samples=samples,
            code=self.code,
        )
