"""The judge stage of a run: render judge prompts, ask the (cached) judge, parse, score.

Every judge request goes through the run's generation cache, keyed by the judge's
fingerprint and the rendered judge prompt, so a re-run makes no judge call and a
killed run resumes with the missing judgements only. An unparsable answer is retried
once with a repair turn (itself cached); if that fails too, the judgement is a judge
error: left out of every score, counted, and never a win or a loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunecheck.errors import DataError, TunecheckError
from tunecheck.examples import Example
from tunecheck.judge.config import JUDGE_METRICS, JudgeSpec
from tunecheck.judge.pairwise import (
    combine,
    comparison,
    side_of,
    summarise,
    verbosity_bias,
)
from tunecheck.judge.parsing import (
    JudgeParseError,
    parse_pairwise,
    parse_rubric,
    repair_message,
)
from tunecheck.judge.result import (
    JudgeCost,
    JudgeErrorRecord,
    JudgeTaskResult,
    PairwiseResult,
    PairwiseVerdict,
    RubricResult,
)
from tunecheck.judge.templates import (
    PAIRWISE_FORMAT,
    render,
    rubric_criteria_text,
    rubric_format,
)
from tunecheck.metrics.base import MetricScores
from tunecheck.models.base import Generation, GenerationParams, GenerationRequest, Model
from tunecheck.stats import Comparison

ANSWER_PREVIEW = 300


class JudgeError(TunecheckError):
    """The judge could not be used: it answers nothing parseable, or its model fails."""


@dataclass
class JudgeOutcome:
    """What the judge stage hands to scoring: per-example judge scores, comparisons, details."""

    scores: dict[str, dict[str, MetricScores]] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    result: JudgeTaskResult | None = None


@dataclass
class _Job:
    key: Any
    messages: tuple[dict[str, str], ...]
    parse: Callable[[str], Any]
    fmt: str
    id: str


@dataclass
class _Answer:
    value: Any = None
    reason: str = ""
    text: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


def text_of(value: Any) -> str:
    """An example input or reference as plain text for the judge prompt."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        if all(isinstance(m, dict) and "content" in m for m in value):
            return "\n".join(f"{m.get('role', 'user')}: {m['content']}" for m in value)
        if len(value) == 1:
            return text_of(value[0])
        return "\n".join(f"({i + 1}) {text_of(v)}" for i, v in enumerate(value))
    return str(value)


def _messages(system: str | None, user: str) -> tuple[dict[str, str], ...]:
    head = ({"role": "system", "content": system},) if system else ()
    return (*head, {"role": "user", "content": user})


class JudgeRunner:
    """Asks one cached judge model; keeps the cost counters of the task."""

    def __init__(self, judge: JudgeSpec, model: Model, *, seed: int) -> None:
        self.judge = judge
        self.model = model
        self.params = GenerationParams(
            max_new_tokens=judge.max_new_tokens, temperature=0.0, seed=seed
        )
        self.cost = JudgeCost()

    def _generate(
        self, jobs: Sequence[_Job], progress: Callable[[int], None] | None
    ) -> list[Generation]:
        requests = [GenerationRequest(prompt=j.messages, params=self.params, id=j.id) for j in jobs]
        calls_before = getattr(self.model, "calls", 0)
        gens = self.model.generate(requests, progress=progress)
        self.cost.calls += getattr(self.model, "calls", 0) - calls_before
        for g in gens:
            pin, pout = g.prompt_tokens or 0, g.completion_tokens or 0
            if g.cached:
                self.cost.cached += 1
                self.cost.cached_tokens_in += pin
                self.cost.cached_tokens_out += pout
            elif g.ok:
                self.cost.tokens_in += pin
                self.cost.tokens_out += pout
        return gens

    def ask(
        self, jobs: Sequence[_Job], progress: Callable[[int], None] | None = None
    ) -> dict[Any, _Answer]:
        """Answer every job: parse, one repair turn for unparsable answers, else a judge error."""
        answers: dict[Any, _Answer] = {}
        repairs: list[_Job] = []
        for job, gen in zip(jobs, self._generate(jobs, progress), strict=True):
            if not gen.ok:
                answers[job.key] = _Answer(reason=f"judge backend error: {gen.error}")
                continue
            try:
                answers[job.key] = _Answer(value=job.parse(gen.text), text=gen.text)
            except JudgeParseError as err:
                follow_up = (
                    {"role": "assistant", "content": gen.text},
                    {"role": "user", "content": repair_message(str(err), job.fmt)},
                )
                repairs.append(_Job(job.key, job.messages + follow_up, job.parse, job.fmt, job.id))
                answers[job.key] = _Answer(reason=str(err), text=gen.text)
        if repairs:
            self.cost.repairs += len(repairs)
            for job, gen in zip(repairs, self._generate(repairs, None), strict=True):
                if not gen.ok:
                    answers[job.key] = _Answer(reason=f"judge backend error: {gen.error}")
                    continue
                try:
                    answers[job.key] = _Answer(value=job.parse(gen.text), text=gen.text)
                except JudgeParseError as err:
                    answers[job.key] = _Answer(
                        reason=f"unparsable after one repair: {err}", text=gen.text
                    )
        return answers


# --------------------------------------------------------------------------- rubric


def _rubric(
    runner: JudgeRunner,
    examples: Sequence[Example],
    outputs: Mapping[str, Sequence[str | None]],
    names: Sequence[str],
    errors: list[JudgeErrorRecord],
    progress: Callable[[int], None] | None,
) -> tuple[dict[str, dict[str, MetricScores]], RubricResult]:
    rubric = runner.judge.rubric
    assert rubric is not None
    criteria = rubric.criteria
    fmt = rubric_format(criteria)
    crit_text = rubric_criteria_text(criteria)
    jobs = []
    for name in names:
        for ex, out in zip(examples, outputs[name], strict=True):
            if out is None:
                continue
            user = render(
                rubric.template,
                {
                    "input": text_of(ex.input),
                    "output": out,
                    "criteria": crit_text,
                    "reference": text_of(ex.reference) if rubric.reference else "",
                },
                fmt,
            )
            jobs.append(
                _Job(
                    (name, ex.id), _messages(rubric.system, user),
                    lambda t: parse_rubric(t, criteria), fmt, f"{ex.id}|rubric|{name}",
                )
            )  # fmt: skip
    answers = runner.ask(jobs, progress)
    scores: dict[str, dict[str, MetricScores]] = {}
    means: dict[str, dict[str, float | None]] = {}
    judged: dict[str, int] = {}
    n_err: dict[str, int] = {}
    for name in names:
        ids, norm, passed, raw = [], [], [], []
        n_err[name] = 0
        for ex in examples:
            ans = answers.get((name, ex.id))
            if ans is None:
                continue  # the contender's backend failed: nothing to judge
            if not ans.ok:
                n_err[name] += 1
                errors.append(
                    JudgeErrorRecord(
                        id=ex.id, mode="rubric", contender=name, reason=ans.reason,
                        answer=ans.text[:ANSWER_PREVIEW],
                    )
                )  # fmt: skip
                continue
            values = ans.value
            ids.append(ex.id)
            raw.append([values[c.name] for c in criteria])
            norm.append(
                np.mean(
                    [
                        (values[c.name] - 1) / 4 if c.scale == "1-5" else values[c.name]
                        for c in criteria
                    ]
                )
            )
            passed.append(
                all(
                    values[c.name] >= rubric.pass_score if c.scale == "1-5" else values[c.name] == 1
                    for c in criteria
                )
            )
        judged[name] = len(ids)
        raw_arr = np.asarray(raw, dtype=float).reshape(len(ids), len(criteria))
        means[name] = {
            c.name: float(raw_arr[:, j].mean()) if len(ids) else None
            for j, c in enumerate(criteria)
        }
        details = {"judge_errors": n_err[name], "criteria_means": means[name]}
        norm_arr = np.asarray(norm, dtype=float)
        pass_arr = np.asarray(passed, dtype=float)
        scores[name] = {
            "judge_score": MetricScores(
                name="judge_score",
                value=float(norm_arr.mean()) if len(ids) else float("nan"),
                per_example=norm_arr,
                example_ids=ids,
                kind="continuous",
                details={**details, "scale": "0-1: mean over criteria of (score-1)/4, pass=1"},
            ),
            "judge_pass_rate": MetricScores(
                name="judge_pass_rate",
                value=float(pass_arr.mean()) if len(ids) else float("nan"),
                per_example=pass_arr,
                example_ids=list(ids),
                kind="binary",
                details={**details, "pass_score": rubric.pass_score},
            ),
        }
    summary = RubricResult(
        criteria=[c.name for c in criteria],
        scales={c.name: c.scale for c in criteria},
        means=means,
        judged=judged,
        errors=n_err,
    )
    return scores, summary


# --------------------------------------------------------------------------- pairwise


def _strongest(values: dict[str, float], baselines: Sequence[str]) -> str:
    # the same rule as results._strongest: best value, the first declared on ties
    def key(name: str) -> float:
        v = values.get(name, float("nan"))
        return v if np.isfinite(v) else -np.inf

    return max(baselines, key=key)


def _pairwise(
    runner: JudgeRunner,
    examples: Sequence[Example],
    outputs: Mapping[str, Sequence[str | None]],
    candidate: str,
    targets: Sequence[str],
    errors: list[JudgeErrorRecord],
    progress: Callable[[int], None] | None,
) -> tuple[dict[str, list[PairwiseVerdict]], dict[str, tuple[int, int]]]:
    """Verdicts per baseline, and (verdicts naming A, decisive verdicts) per baseline."""
    pw = runner.judge.pairwise
    assert pw is not None
    jobs = []
    for base in targets:
        for i, ex in enumerate(examples):
            c_out, b_out = outputs[candidate][i], outputs[base][i]
            if c_out is None or b_out is None:
                continue
            for cand_first in (True, False):
                a, b = (c_out, b_out) if cand_first else (b_out, c_out)
                user = render(
                    pw.template,
                    {
                        "input": text_of(ex.input),
                        "output_a": a,
                        "output_b": b,
                        "question": pw.question,
                        "reference": text_of(ex.reference) if pw.reference else "",
                    },
                    PAIRWISE_FORMAT,
                )
                order = "cand-first" if cand_first else "base-first"
                jobs.append(
                    _Job(
                        (base, ex.id, cand_first), _messages(pw.system, user), parse_pairwise,
                        PAIRWISE_FORMAT, f"{ex.id}|pairwise|{candidate}-vs-{base}|{order}",
                    )
                )  # fmt: skip
    answers = runner.ask(jobs, progress)
    out: dict[str, list[PairwiseVerdict]] = {}
    for base in targets:
        verdicts = []
        for ex in examples:
            first_ans = answers.get((base, ex.id, True))
            second_ans = answers.get((base, ex.id, False))
            if first_ans is None or second_ans is None:
                continue  # a contender's backend failed on this example
            first = side_of(first_ans.value, True) if first_ans.ok else None
            second = side_of(second_ans.value, False) if second_ans.ok else None
            for ans in (first_ans, second_ans):
                if not ans.ok:
                    errors.append(
                        JudgeErrorRecord(
                            id=ex.id, mode="pairwise", contender=f"{candidate} vs {base}",
                            reason=ans.reason, answer=ans.text[:ANSWER_PREVIEW],
                        )
                    )  # fmt: skip
            outcome, consistent = combine(first, second)
            verdicts.append(
                PairwiseVerdict(
                    id=ex.id, first=first, second=second, outcome=outcome, consistent=consistent
                )
            )
        out[base] = verdicts
    # position bias: how often a decisive single-order verdict names response A
    position: dict[str, tuple[int, int]] = {}
    for base in targets:
        first_a = decisive = 0
        for ex in examples:
            for cand_first in (True, False):
                got = answers.get((base, ex.id, cand_first))
                if got is not None and got.ok and got.value in ("A", "B"):
                    decisive += 1
                    first_a += got.value == "A"
        position[base] = (first_a, decisive)
    return out, position


# --------------------------------------------------------------------------- the stage


def run_task_judge(
    judge: JudgeSpec,
    model: Model,
    examples: Sequence[Example],
    outputs: Mapping[str, Sequence[str | None]],
    *,
    candidate: str,
    baselines: Sequence[str],
    primary_metric: str,
    metrics: Sequence[str],
    metric_scores: Callable[[str, str], MetricScores | None],
    seed: int = 0,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    progress: Callable[[int], None] | None = None,
    where: str = "task.judge",
) -> JudgeOutcome:
    """Judge one task's outputs (rubric and/or pairwise) and turn verdicts into scores.

    ``outputs[contender][i]`` answers ``examples[i]`` (``None``: a backend error, not
    judged). ``metric_scores(contender, metric)`` gives the task metric's per-example
    scores (for choosing the strongest baseline and the verbosity check).
    """
    for mode in ("rubric", "pairwise"):
        cfg = getattr(judge, mode)
        missing = [ex.id for ex in examples if ex.reference is None]
        if cfg is not None and cfg.reference and missing:
            raise DataError(
                f"`{mode}.reference` shows the reference answer to the judge, but "
                f"{len(missing)} example(s) have none (first: {missing[0]!r})",
                where=f"{where}.{mode}.reference",
                hint="map the reference column with `fields: {reference: ...}`, or set "
                "`reference: false`",
            )
    runner = JudgeRunner(judge, model, seed=seed)
    errors: list[JudgeErrorRecord] = []
    outcome = JudgeOutcome()
    names = [candidate, *baselines]
    rubric_summary = None
    total = 0
    if judge.rubric is not None:
        rubric_scores, rubric_summary = _rubric(runner, examples, outputs, names, errors, progress)
        outcome.scores = {n: dict(s) for n, s in rubric_scores.items()}
        total += sum(rubric_summary.judged.values()) + sum(rubric_summary.errors.values())

    pairwise_results: list[PairwiseResult] = []
    if judge.pairwise is not None:
        # the metric that names the strongest baseline; the win rate is decided after judging
        if primary_metric == "judge_win_rate" or judge.pairwise.against == "all":
            targets = list(baselines)
        else:
            values = {
                b: _primary_value(outcome, metric_scores, b, primary_metric) for b in baselines
            }
            targets = [_strongest(values, baselines)]
        verdicts, position = _pairwise(
            runner, examples, outputs, candidate, targets, errors, progress
        )
        text_metric = next((m for m in [primary_metric, *metrics] if m not in JUDGE_METRICS), None)
        per: dict[str, tuple[np.ndarray, list[str]]] = {}
        for base in targets:
            cand_out = {ex.id: outputs[candidate][i] for i, ex in enumerate(examples)}
            base_out = {ex.id: outputs[base][i] for i, ex in enumerate(examples)}
            cm = metric_scores(candidate, text_metric) if text_metric else None
            bm = metric_scores(base, text_metric) if text_metric else None
            bias = verbosity_bias(
                verdicts[base],
                cand_out,
                base_out,
                text_metric if cm is not None and bm is not None else None,
                dict(zip(cm.example_ids, cm.per_example.tolist(), strict=True)) if cm else {},
                dict(zip(bm.example_ids, bm.per_example.tolist(), strict=True)) if bm else {},
            )
            first_a, decisive = position.get(base, (0, 0))
            res, s, ids = summarise(
                candidate, base, verdicts[base], first_a=first_a, decisive_single=decisive,
                verbosity=bias, alpha=alpha, n_resamples=n_resamples, seed=seed,
            )  # fmt: skip
            pairwise_results.append(res)
            per[base] = (s, ids)
            outcome.comparisons.append(
                comparison(res, s, alpha=alpha, seed=seed, n_resamples=n_resamples)
            )
            outcome.scores.setdefault(base, {})["judge_win_rate"] = MetricScores(
                name="judge_win_rate", value=1 - res.win_rate if res.win_rate is not None else float("nan"),
                per_example=1.0 - s, example_ids=list(ids), kind="continuous",
                details={"judge_errors": res.errors, "vs": candidate},
            )  # fmt: skip
            total += len(verdicts[base])
        # the candidate's win rate is against the strongest judged baseline
        vs = _strongest(
            {b: _primary_value(outcome, metric_scores, b, primary_metric) for b in targets}, targets
        )
        s, ids = per[vs]
        res = next(r for r in pairwise_results if r.baseline == vs)
        outcome.scores.setdefault(candidate, {})["judge_win_rate"] = MetricScores(
            name="judge_win_rate", value=res.win_rate if res.win_rate is not None else float("nan"),
            per_example=s, example_ids=list(ids), kind="continuous",
            details={"judge_errors": res.errors, "vs": vs, "wins": res.wins,
                     "losses": res.losses, "ties": res.ties},
        )  # fmt: skip

    n_errors = len([e for e in errors if e.mode == "rubric"]) + sum(
        r.errors for r in pairwise_results
    )
    if total and n_errors / total > judge.max_error_rate:
        sample = errors[0] if errors else None
        detail = f"; e.g. example {sample.id!r}: {sample.reason}" if sample else ""
        raise JudgeError(
            f"the judge {judge.model!r} gave no usable judgement for {n_errors} of {total} "
            f"items (more than max_error_rate {judge.max_error_rate:g}){detail}",
            where=f"{where}.model",
            hint="check that the judge model follows instructions and that an overridden "
            "template asks for the JSON answer (see the README's judge section); nothing "
            "of this run was scored",
        )
    outcome.result = JudgeTaskResult(
        model=judge.model,
        fingerprint=model.fingerprint,
        rubric=rubric_summary,
        pairwise=pairwise_results,
        cost=runner.cost,
        errors=errors,
    )
    return outcome


def _primary_value(
    outcome: JudgeOutcome,
    metric_scores: Callable[[str, str], MetricScores | None],
    name: str,
    metric: str,
) -> float:
    if metric in JUDGE_METRICS:
        s = outcome.scores.get(name, {}).get(metric)
    else:
        s = metric_scores(name, metric)
    return s.value if s is not None else float("nan")
