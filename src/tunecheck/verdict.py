"""The verdict: DEPLOY, ITERATE or ABANDON, with the numbers behind it and what to do next.

Rules (per task, on the primary metric, candidate vs the STRONGEST baseline; a
"gain" is oriented by the metric's direction, so for a lower-is-better metric such
as ``ter`` a negative delta is a gain):

* **real gain**: the paired test is significant (p < alpha), the delta is positive
  and the bootstrap interval lies above 0.
* **DEPLOY**: a real gain of at least ``thresholds.min_gain`` on every task, and
  no probe regression (:mod:`tunecheck.probe_rules`: a drop past ``thresholds.warn``
  that is significant after Holm across the informative probes).
* **ITERATE**: a real gain but a probe regression (catastrophic
* **length**: a real gain that is not significant at equal output length (the
  paired length regression, :mod:`tunecheck.length`) is "explained by longer
  outputs": ITERATE, never DEPLOY on that metric alone.
  forgetting: lower the learning rate, fewer epochs, mix general data, LoRA); or a
  positive gain that is not yet significant while the interval still allows a
  useful one (more test data needed, with the number of examples).
* **ABANDON**: the candidate does not beat the prompted baseline (delta <= 0), or
  the interval rules out a useful gain: improve prompting or add retrieval instead.

A probe drop past ``warn`` that is *not* significant does not block; it is reported as
inconclusive with the probe size needed to settle it. Probes at the floor or ceiling
are uninformative and never block. Several tasks: the most severe decision wins.
:func:`tunecheck.verdict_context.qualify` then adds what the numbers cannot see
(blind check, weak baseline, unchecked capabilities, must-not-regress slices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tunecheck.completeness import dropped_reasons, incomplete_verdict
from tunecheck.core.config import Thresholds
from tunecheck.formatting import fmt_ci, fmt_p, fmt_pts
from tunecheck.results import ProbeResult, TaskResult, Verdict

Decision = Literal["DEPLOY", "ITERATE", "ABANDON"]
_SEVERITY = {"DEPLOY": 0, "ITERATE": 1, "ABANDON": 2}

FORGETTING_STEPS = [
    "lower the learning rate (e.g. halve it)",
    "train for fewer epochs, or keep an earlier checkpoint (`tunecheck diagnose trainer_state.json`)",
    "mix general instruction data (about 10-20%) into the training set to limit forgetting",
    "use LoRA with a small rank instead of full fine-tuning (or lower the LoRA rank)",
]
LENGTH_STEPS = [
    "the gain is explained by longer outputs: compare at equal length (cap max_new_tokens or ask "
    "for the reference length in the prompt of every contender) before deploying",
    "prefer a metric that does not reward length (an F-measure rather than recall, or a judge "
    "instructed to ignore length) as the primary metric",
]
ABANDON_STEPS = [
    "improve the prompt of the base model instead: a sharper system prompt and a few-shot examples",
    "add retrieval (RAG) if the task needs knowledge the base model lacks",
    "if you keep fine-tuning: check the training data (labels, format, same distribution as the test set) "
    "and that the adapter really is applied",
]


def _val(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _task_decision(task: TaskResult, thresholds: Thresholds) -> tuple[Decision, str, list[str]]:
    comp = task.comparison()
    n_base = len(task.baselines)
    strongest = f"{task.strongest_baseline}" + (
        f" (strongest of {n_base} baselines)" if n_base > 1 else ""
    )
    reason = (
        f"task {task.name!r} {comp.metric} {fmt_pts(comp.delta)} {fmt_ci(comp.ci_low, comp.ci_high)} "
        f"vs {strongest}, {fmt_p(comp.p_value)} ({comp.test}, n={comp.n}; "
        f"{_val(comp.candidate_value)} vs {_val(comp.baseline_value)})"
    )
    if not comp.higher_is_better:
        reason += f" [{comp.metric}: lower is better]"
    steps: list[str] = []
    # gain > 0 means better whatever the metric's direction (a TER drop is a gain)
    gain, gain_low, gain_high = comp.improvement()
    if gain is None or comp.n == 0:
        return (
            "ITERATE",
            reason + ": no example answered by both contenders",
            ["fix the backend errors (see the run's error counts) and run again"],
        )
    real = comp.significant and gain > 0 and (gain_low or 0) > 0
    useful = thresholds.min_gain
    if real and gain >= useful:
        adj = task.length_adjustment()
        if adj is not None and adj.explained_by_length:
            # a gain that vanishes at equal output length is not a reason to deploy
            return "ITERATE", reason + f": {adj.note}", list(LENGTH_STEPS)
        return "DEPLOY", reason, steps
    if gain <= 0:
        worse = comp.significant and gain < 0
        tail = (
            f": the candidate is significantly worse than {task.strongest_baseline}"
            if worse
            else f": the candidate does not beat {task.strongest_baseline}"
        )
        return "ABANDON", reason + tail, list(ABANDON_STEPS)
    # positive but not a (useful) real gain
    if gain_high is not None and gain_high > useful:
        need = comp.n_required
        if real:  # significant but below min_gain
            tail = f": real but below the minimum useful gain of {useful * 100:.1f} pts"
        else:
            tail = f": not significant; {comp.note}" if comp.note else ": not significant"
        if need:
            steps.append(
                f"more test data needed: about {need} examples to detect {fmt_pts(comp.delta)} "
                f"at 80% power (now {comp.n})"
            )
        else:
            steps.append("more test data needed to tell this gain from noise")
        steps.append(
            "keep the test set locked: add new held-out examples rather than reusing training data"
        )
        return "ITERATE", reason + tail, steps
    tail = (
        f": the interval rules out a gain of {useful * 100:.1f} pts or more"
        if useful > 0
        else ": no useful gain is plausible"
    )
    return "ABANDON", reason + tail, list(ABANDON_STEPS)


def _probe_summary(probes: Sequence[ProbeResult]) -> str:
    from tunecheck.probe_rules import gate

    if not probes:
        return "no capability probes were run"
    gates = [gate(p) for p in probes]
    if all(g == "uninformative" for g in gates):
        return "no probe could show a regression of this model (all uninformative)"
    if "inconclusive" in gates:
        return "no capability regression beyond noise (some drops inconclusive)"
    return "breaks nothing measured"


def decide(
    tasks: TaskResult | Sequence[TaskResult],
    probes: Sequence[ProbeResult],
    thresholds: Thresholds,
) -> Verdict:
    """DEPLOY / ITERATE / ABANDON from the task comparisons and probe results (rules above)."""
    task_list = [tasks] if isinstance(tasks, TaskResult) else list(tasks)
    if not task_list:
        raise ValueError("decide() needs at least one task result")
    # first rule: too many failed requests and there is nothing fair to judge
    incomplete = incomplete_verdict(task_list, thresholds)
    if incomplete is not None:
        return incomplete
    reasons: list[str] = []
    steps: list[str] = []
    decision: Decision = "DEPLOY"
    for task in task_list:
        d, reason, task_steps = _task_decision(task, thresholds)
        reasons.append(reason)
        steps.extend(s for s in task_steps if s not in steps)
        if _SEVERITY[d] > _SEVERITY[decision]:
            decision = d
        primary_adj = task.length_adjustment()
        for adj in task.length_adjusted:
            if adj.explained_by_length and adj is not primary_adj:
                reasons.append(f"task {task.name!r} {adj.metric} vs {adj.baseline}: {adj.note}")
        for baseline, share in task.identical_outputs.items():
            if share == 1.0 and task.n_examples > 0:
                reasons.append(
                    f"task {task.name!r}: the candidate's outputs equal {baseline}'s on every example"
                )
                steps.append("check that the fine-tuned weights / adapter are really loaded")

    reasons.extend(dropped_reasons(task_list))
    from tunecheck.probe_rules import gate, inconclusive_steps, probe_line

    regressed = [p for p in probes if gate(p) == "regression"]
    reasons.extend(probe_line(p) for p in probes)
    if regressed:
        if decision == "DEPLOY":
            decision = "ITERATE"
        if decision == "ITERATE":
            steps.extend(s for s in FORGETTING_STEPS if s not in steps)
    steps.extend(s for s in inconclusive_steps(probes) if s not in steps)
    if decision == "DEPLOY":
        steps.append(
            "deploy the candidate; keep the locked test set and gate new checkpoints with "
            "`tunecheck run --fail-on iterate`"
        )
    summary = {
        "DEPLOY": "the fine-tune beats the strongest baseline beyond noise and "
        + _probe_summary(probes),
        "ITERATE": "promising but not ready: "
        + ("a capability regressed" if regressed else "the evidence is not yet conclusive"),
        "ABANDON": "fine-tuning did not beat the strongest baseline ("
        + ", ".join(sorted({t.strongest_baseline for t in task_list}))
        + ")",
    }[decision]
    if (
        decision == "ITERATE"
        and regressed
        and any(_task_decision(t, thresholds)[0] != "DEPLOY" for t in task_list)
    ):
        summary = "promising but not ready: the gain is not conclusive and a capability regressed"
    if (
        decision == "ITERATE"
        and not regressed
        and any(
            (adjusted := t.length_adjustment()) is not None and adjusted.explained_by_length
            for t in task_list
        )
    ):
        summary = "promising but not ready: the gain is explained by longer outputs"
    return Verdict(decision=decision, summary=summary, reasons=reasons, next_steps=steps)


def exit_code(verdict: Verdict | None, fail_on: str = "never") -> int:
    """CI exit status: ``iterate`` fails unless DEPLOY (DEPLOY-pending-review is not yet
    DEPLOY), ``abandon`` on ABANDON (and both on INCOMPLETE: a run without a verdict never
    passes a gate)."""
    if fail_on not in ("iterate", "abandon", "never"):
        raise ValueError(f"fail_on must be iterate, abandon or never, not {fail_on!r}")
    if fail_on == "never":
        return 0
    if verdict is None:
        return 1
    if fail_on == "iterate":
        return 0 if verdict.decision == "DEPLOY" and not verdict.pending_review else 1
    return 1 if verdict.decision in ("ABANDON", "INCOMPLETE") else 0
