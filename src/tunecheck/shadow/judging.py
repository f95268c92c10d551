"""The run's pairwise LLM judge on shadow pairs: production vs candidate, both orders.

``tunecheck shadow report --judge REF`` judges every logged pair with the same judge
code as ``tunecheck run`` (templates, strict parsing with one repair turn, both orders
with an order-flipping verdict counted as a tie) behind the same cache, so a second report
makes no judge call. The verdicts are computed in one batch and handed to
:func:`tunecheck.shadow.report.build_report` through its pairwise-judge hook.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunecheck.examples import Example
from tunecheck.store import Store

if TYPE_CHECKING:
    from tunecheck.judge.result import JudgeCost

_SCORE = {"win": 1.0, "loss": 0.0, "tie": 0.5}


def _input_of(request: dict[str, Any]) -> Any:
    """What the user asked: the chat messages, or the completion prompt."""
    if isinstance(request.get("messages"), list):
        return tuple(
            {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
            for m in request["messages"]
            if isinstance(m, dict)
        )
    prompt = request.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(request, sort_keys=True)


def _key(request: dict[str, Any], production: str, candidate: str) -> tuple[str, str, str]:
    return json.dumps(request, sort_keys=True, default=str), production, candidate


@dataclass
class ShadowJudge:
    """A :class:`~tunecheck.shadow.report.PairwiseJudge` over pre-judged pairs, with its cost."""

    scores: dict[tuple[str, str, str], float | None]
    cost: JudgeCost

    def __call__(self, request: dict[str, Any], production: str, candidate: str) -> float | None:
        return self.scores.get(_key(request, production, candidate))


def shadow_judge(
    rows: Sequence[dict[str, Any]],
    ref: str,
    store: Store,
    *,
    options: dict[str, Any] | None = None,
    seed: int = 0,
) -> ShadowJudge:
    """A pairwise-judge callable for ``build_report`` with every logged pair pre-judged.

    The candidate is the shadowed model, the baseline production. Returns 1 (candidate
    better), 0 (production better), 0.5 (tie, including a verdict that flips with the
    order) or ``None`` (the judge gave no usable verdict: never a win or a loss).
    """
    from tunecheck.judge.config import JudgeSpec, PairwiseSpec
    from tunecheck.judge.run import open_judge
    from tunecheck.judge.stage import JudgeRunner, _pairwise

    spec = JudgeSpec(model=ref, options=options or {}, pairwise=PairwiseSpec())
    model = open_judge(spec.model, spec.options, store, spec.batch_size)
    runner = JudgeRunner(spec, model, seed=seed)
    pairs = [
        r
        for r in rows
        if r.get("mirror") == "done" and r.get("prod_text") is not None and r.get("cand_text")
    ]
    examples = [Example(id=str(r["id"]), input=_input_of(r.get("request") or {})) for r in pairs]
    outputs: dict[str, Sequence[str | None]] = {
        "candidate": [r["cand_text"] for r in pairs],
        "production": [r["prod_text"] for r in pairs],
    }
    errors: list[Any] = []
    verdicts, _ = _pairwise(runner, examples, outputs, "candidate", ["production"], errors, None)
    outcome = {v.id: v.outcome for v in verdicts["production"]}
    by_key = {
        _key(r.get("request") or {}, r["prod_text"], r["cand_text"]): _SCORE.get(
            outcome.get(str(r["id"]), "error")
        )
        for r in pairs
    }
    return ShadowJudge(by_key, runner.cost)
