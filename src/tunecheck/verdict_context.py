"""What the numbers alone cannot see: qualifiers applied to the verdict after :func:`decide`.

* **blind check** (``require_blind_check``): a metric gain is not approval. When a task
  requires it (default: generation tasks, i.e. any metric that is not an exact match)
  and it has not been done, a DEPLOY becomes *DEPLOY-pending-review*, which
  ``--fail-on iterate`` treats as not yet DEPLOY. :func:`apply_blind_check` is the hook
  through which a completed blind check (a person or a judge) satisfies it.
* **weak baseline**: no baseline has a system prompt or few-shot examples, so the
  fine-tune was only compared with an unprompted model; a DEPLOY is marked so.
* **no probes**: "no capability probes were run" is said instead of "breaks nothing
  measured"; a DEPLOY of a causal LM is marked "capabilities not checked".
* **must-not-regress slices**: a significant drop (Holm across the listed slices) on a
  slice listed in ``task.must_not_regress`` blocks DEPLOY.
* **probe pairing**: which contender the probes compared the candidate with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tunecheck.errors import SpecError
from tunecheck.results import BlindCheck, TaskResult, Verdict
from tunecheck.stats import Comparison, apply_holm

if TYPE_CHECKING:
    from tunecheck.spec import Spec, TaskSpec

EXACT_METRICS = frozenset(
    {
        "accuracy",
        "macro_f1",
        "exact_match",
        "json_exact_match",
        "field_accuracy",
        "json_schema_valid",
        "numeric_match",
    }
)
"""Metrics that check an answer exactly: tasks scored only by these need no blind check by default."""

CAPABILITIES_NOT_CHECKED = "capabilities not checked"
DEPLOY_STEP = "deploy the candidate"  # how decide() starts the next step of a DEPLOY
UNPROMPTED = "vs an unprompted baseline"


@dataclass
class VerdictContext:
    """Facts about the run that :func:`qualify` turns into reasons, marks and states."""

    run_id: str | None = None
    probes_run: bool = True
    #: probes ran, but every one was at the model's floor or ceiling (none could show a drop)
    probes_uninformative: bool = False
    no_probes_reason: str = ""
    causal_lm: bool = True
    unprompted_baseline: bool = False
    blind_check: BlindCheck | None = None
    must_not_regress: dict[str, list[Comparison]] = field(default_factory=dict)
    probe_pairing: str = ""
    alpha: float = 0.05


def requires_blind_check(task: TaskSpec) -> bool:
    """``task.require_blind_check``, or by default: True unless every metric is an exact one."""
    if task.require_blind_check is not None:
        return task.require_blind_check
    return not all(m in EXACT_METRICS for m in task.metrics)


def has_prompt(spec_prompt: object) -> bool:
    """A system prompt or few-shot examples (a plain template is not a prompt)."""
    return bool(getattr(spec_prompt, "system", None)) or bool(getattr(spec_prompt, "few_shot", []))


def must_not_regress(task: TaskResult, slices: Sequence[str]) -> list[Comparison]:
    """The primary-metric comparisons on the listed slices, Holm-adjusted across them only."""
    if not slices:
        return []
    available = sorted({c.slice for c in task.slice_comparisons if c.slice})
    missing = [s for s in slices if s not in available]
    if missing:
        raise SpecError(
            f"must_not_regress names slice(s) {missing} that no example of task {task.name!r} "
            f"carries; slices in the data: {available or 'none'}",
            where=f"task {task.name!r}: must_not_regress",
            hint="tag examples with the slice (fields.slices) or fix the slice name",
        )
    picked = [
        c.model_copy()
        for c in task.slice_comparisons
        if c.metric == task.primary_metric and c.slice in slices
    ]
    apply_holm(picked)
    return picked


def context_for(
    spec: Spec,
    tasks: Sequence[TaskResult],
    *,
    run_id: str | None,
    probes_run: bool,
    no_probes_reason: str = "",
    probe_pairing: str = "",
) -> VerdictContext:
    """The context of a run of ``spec``."""
    from tunecheck.models import split_model_ref

    by_name = {t.name: t for t in tasks}
    guarded = {
        t.name: must_not_regress(by_name[t.name], t.must_not_regress)
        for t in spec.tasks
        if t.must_not_regress and t.name in by_name
    }
    required = [t for t in spec.tasks if requires_blind_check(t)]
    blind = None
    if required:
        blind = BlindCheck(required=True, n=max(t.blind_check_examples for t in required))
        names = {t.name for t in required}
        blind = judged_blind_check(
            [t for t in tasks if t.name in names], blind, alpha=spec.thresholds.alpha
        )
    backend, _ = split_model_ref(spec.candidate_spec.model)
    return VerdictContext(
        run_id=run_id,
        probes_run=probes_run,
        no_probes_reason=no_probes_reason,
        causal_lm=backend != "hf-classifier",
        unprompted_baseline=not any(has_prompt(b.prompt) for b in spec.baselines),
        blind_check=blind,
        must_not_regress=guarded,
        probe_pairing=probe_pairing,
        alpha=spec.thresholds.alpha,
    )


def _mark(verdict: Verdict, qualifier: str) -> None:
    if qualifier not in verdict.qualifiers:
        verdict.qualifiers.append(qualifier)


def judged_blind_check(
    tasks: Sequence[TaskResult], pending: BlindCheck, *, alpha: float = 0.05
) -> BlindCheck:
    """The blind check as a pairwise LLM judge settled it, or ``pending`` when it did not.

    Done and passed when the judge prefers the candidate beyond noise on every task that
    needs the check (:func:`tunecheck.judge.blind.judge_blind_check`: both orders, position
    consistency of at least 70%); done and *not* passed when a consistent judge prefers the
    strongest baseline beyond noise on any of them. Anything else (no pairwise judge, an
    order-biased judge, no clear preference) leaves the check to people:
    ``tunecheck review RUN``.
    """
    from tunecheck.judge.blind import LOW_CONSISTENCY, judge_blind_check

    checks = [judge_blind_check(t, alpha=alpha) for t in tasks]
    if not checks or any(c is None for c in checks):
        return pending
    done = [c for c in checks if c is not None]
    against = [
        c
        for c in done
        if c.position_consistency is not None
        and c.position_consistency >= LOW_CONSISTENCY
        and c.win_rate is not None
        and c.win_rate < 0.5
        and c.p_value is not None
        and c.p_value < alpha
        and c.ci_high is not None
        and c.ci_high < 0.5
    ]
    if not against and not all(c.confirms for c in done):
        return pending
    note = "; ".join(
        f"{c.task}: win rate {c.win_rate:.2f} [{c.ci_low:.2f}, {c.ci_high:.2f}] vs {c.baseline}, "
        f"position consistency {c.position_consistency:.0%}"
        for c in done
        if c.win_rate is not None
        and c.ci_low is not None
        and c.ci_high is not None
        and c.position_consistency is not None
    )
    return BlindCheck(
        required=True,
        n=pending.n,
        done=True,
        passed=not against,
        examples=min(c.n for c in done),
        method=done[0].by,
        note=note,
    )


def qualify(verdict: Verdict, ctx: VerdictContext) -> Verdict:
    """The verdict with the context's reasons, marks and states added (a new object)."""
    from tunecheck.formatting import fmt_ci, fmt_p, fmt_pts

    v = verdict.model_copy(deep=True)
    for task_name, comps in ctx.must_not_regress.items():
        for c in comps:
            p = c.p_adjusted if c.p_adjusted is not None else c.p_value
            gain = c.improvement()[0]  # oriented by the metric's direction (ter: lower is better)
            dropped = gain is not None and gain < 0 and p is not None and p < ctx.alpha
            line = (
                f"must-not-regress slice {c.slice!r} of task {task_name!r}: {c.metric} "
                f"{fmt_pts(c.delta)} {fmt_ci(c.ci_low, c.ci_high)}, {fmt_p(p)} (Holm across "
                f"{len(comps)} listed slice(s), n={c.n})"
            )
            if dropped:
                v.reasons.append(line + ": a significant drop, DEPLOY is blocked")
                if v.decision == "DEPLOY":
                    v.decision = "ITERATE"
                    v.summary = (
                        f"promising but not ready: the must-not-regress slice {c.slice!r} dropped"
                    )
                step = (
                    f"fix the drop on slice {c.slice!r}: add training examples of that slice, or "
                    "keep an earlier checkpoint"
                )
                if step not in v.next_steps:
                    v.next_steps.append(step)
            else:
                v.reasons.append(line + ": no significant drop")
    if ctx.probe_pairing:
        v.reasons.append(ctx.probe_pairing)
    if not ctx.probes_run:
        why = f" ({ctx.no_probes_reason})" if ctx.no_probes_reason else ""
        v.reasons.append(f"no capability probes were run{why}")
        if v.decision == "DEPLOY" and ctx.causal_lm:
            _mark(v, CAPABILITIES_NOT_CHECKED)
            v.next_steps.append(
                "run capability probes (remove `probes: []` / `--no-probes`) before deploying: "
                "fine-tuning can cost general abilities"
            )
    elif ctx.probes_uninformative and v.decision == "DEPLOY" and ctx.causal_lm:
        _mark(v, CAPABILITIES_NOT_CHECKED)
        v.next_steps.append(
            "add probes this base model can do (well above chance, below the ceiling): every "
            "probe of this run was uninformative, so no regression could be seen"
        )
    if ctx.unprompted_baseline:
        v.reasons.append(
            "weak baseline: no baseline has a system prompt or few-shot examples, so the "
            "fine-tune was compared with an unprompted base model; a fair comparison needs the "
            "best production prompt as a baseline"
        )
        step = (
            "add a baseline contender with your best production prompt (a system prompt and "
            "few-shot examples) and run again"
        )
        if step not in v.next_steps:
            v.next_steps.append(step)
        if v.decision == "DEPLOY":
            _mark(v, UNPROMPTED)
    if ctx.blind_check is not None:
        v = apply_blind_check(v, ctx.blind_check, run_id=ctx.run_id)
    # a qualifier that turned the DEPLOY into ITERATE also withdraws decide()'s deploy step
    for i, step in enumerate(list(v.next_steps)):
        if step.startswith(DEPLOY_STEP) and v.decision != "DEPLOY":
            v.next_steps.pop(i)
            break
    return v


def apply_blind_check(verdict: Verdict, check: BlindCheck, *, run_id: str | None = None) -> Verdict:
    """Apply a blind-check state to a verdict: the hook for reviews and judges.

    ``check.done`` False on a DEPLOY: *DEPLOY-pending-review* (``pending_review``).
    ``check.done`` and ``check.passed``: the DEPLOY stands, with the check in the reasons.
    ``check.done`` and not ``passed``: the blind comparison did not prefer the candidate, so
    the metrics' DEPLOY becomes ITERATE. Verdicts other than DEPLOY only record the state.
    """
    v = verdict.model_copy(deep=True)
    v.blind_check = check
    if not check.required:
        v.pending_review = False
        return v
    cmd = f"`tunecheck review {run_id or 'RUN'}`"
    if not check.done:
        if v.decision == "DEPLOY":
            v.pending_review = True
            v.summary = f"metrics say deploy; blind check of {check.n} examples not done yet: {cmd}"
            step = (
                f"compare {check.n} candidate and baseline outputs blind (a person or a judge): {cmd}; "
                "until then `--fail-on iterate` treats this run as not yet DEPLOY"
            )
            if step not in v.next_steps:
                v.next_steps.insert(0, step)
            # not yet: the deploy step comes back when the blind check passes
            v.next_steps = [x for x in v.next_steps if not x.startswith(DEPLOY_STEP)]
        return v
    v.pending_review = False
    v.next_steps = [s for s in v.next_steps if not s.startswith(f"compare {check.n} candidate")]
    how = f"{check.examples} examples" if check.examples else "done"
    by = f" by {check.method}" if check.method else ""
    note = f" ({check.note})" if check.note else ""
    if check.passed:
        v.reasons.append(f"blind check{by}: {how}, the candidate was preferred{note}")
        if v.decision == "DEPLOY" and v.summary.startswith("metrics say deploy"):
            v.summary = (
                "the fine-tune beats the strongest baseline beyond noise and passed the blind check"
            )
        if v.decision == "DEPLOY" and not any(x.startswith(DEPLOY_STEP) for x in v.next_steps):
            v.next_steps.append(
                f"{DEPLOY_STEP}; keep the locked test set and gate new checkpoints with "
                "`tunecheck run --fail-on iterate`"
            )
    else:
        v.reasons.append(f"blind check{by}: {how}, the candidate was NOT preferred{note}")
        if v.decision == "DEPLOY":
            v.decision = "ITERATE"
            v.qualifiers = []
            v.summary = "the metrics say deploy but the blind check did not prefer the candidate"
            v.next_steps = [s for s in v.next_steps if not s.startswith(DEPLOY_STEP)]
            v.next_steps.append(
                "read the blind check's disagreements: the metric may reward something readers do not want"
            )
    return v
