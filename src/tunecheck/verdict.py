"""The verdict: DEPLOY, ITERATE or ABANDON, with the numbers behind it and what to do next.

Rules (per task, on the primary metric, candidate vs the STRONGEST baseline):

* **real gain**: the paired test is significant (p < alpha), the delta is positive
  and the bootstrap interval lies above 0.
* **DEPLOY**: a real gain of at least ``thresholds.min_gain`` on every task, and
  every probe ``ok`` (relative drop at most ``thresholds.warn``).
* **ITERATE**: a real gain but a probe past the warning threshold (catastrophic
  forgetting: lower the learning rate, fewer epochs, mix general data, LoRA); or a
  positive gain that is not yet significant while the interval still allows a
  useful one (more test data needed, with the number of examples).
* **ABANDON**: the candidate does not beat the prompted baseline (delta <= 0), or
  the interval rules out a useful gain: improve prompting or add retrieval instead.

A probe drop past a threshold that is *not* significant still blocks DEPLOY (the
regression cannot be ruled out) and is reported as inconclusive with the probe size
needed to settle it. Several tasks: the most severe decision wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tunecheck.results import ProbeResult, TaskResult, Verdict
from tunecheck.spec import Thresholds

Decision = Literal["DEPLOY", "ITERATE", "ABANDON"]
_SEVERITY = {"DEPLOY": 0, "ITERATE": 1, "ABANDON": 2}

FORGETTING_STEPS = [
    "lower the learning rate (e.g. halve it)",
    "train for fewer epochs, or keep an earlier checkpoint (`tunecheck diagnose trainer_state.json`)",
    "mix general instruction data (about 10-20%) into the training set to limit forgetting",
    "use LoRA with a small rank instead of full fine-tuning (or lower the LoRA rank)",
]
ABANDON_STEPS = [
    "improve the prompt of the base model instead: a sharper system prompt and a few-shot examples",
    "add retrieval (RAG) if the task needs knowledge the base model lacks",
    "if you keep fine-tuning: check the training data (labels, format, same distribution as the test set) "
    "and that the adapter really is applied",
]


def fmt_p(p: float | None) -> str:
    """``p<0.001`` or ``p=0.023``."""
    if p is None:
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_pts(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f} pts"


def fmt_ci(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return "[n/a]"
    return f"[{lo * 100:+.1f}, {hi * 100:+.1f}]"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f}%"


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
    steps: list[str] = []
    if comp.delta is None or comp.n == 0:
        return (
            "ITERATE",
            reason + ": no example answered by both contenders",
            ["fix the backend errors (see the run's error counts) and run again"],
        )
    real = comp.significant and comp.delta > 0 and (comp.ci_low or 0) > 0
    useful = thresholds.min_gain
    if real and comp.delta >= useful:
        return "DEPLOY", reason, steps
    if comp.delta <= 0:
        worse = comp.significant and comp.delta < 0
        tail = (
            f": the candidate is significantly worse than {task.strongest_baseline}"
            if worse
            else f": the candidate does not beat {task.strongest_baseline}"
        )
        return "ABANDON", reason + tail, list(ABANDON_STEPS)
    # positive but not a (useful) real gain
    if comp.ci_high is not None and comp.ci_high > useful:
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


def _probe_reason(p: ProbeResult) -> str:
    base = f"{p.base:.3f}" if p.base is not None else "n/a"
    ft = f"{p.finetuned:.3f}" if p.finetuned is not None else "n/a"
    p_show = p.p_adjusted if p.p_adjusted is not None else p.p_value
    text = f"{p.name} probe {p.metric} {fmt_pct(p.rel_change)} ({p.status}; {base} -> {ft}, {fmt_p(p_show)}, n={p.n})"
    if p.status != "ok" and not p.significant:
        text += ": inconclusive, the drop is within noise"
    return text


def decide(
    tasks: TaskResult | Sequence[TaskResult],
    probes: Sequence[ProbeResult],
    thresholds: Thresholds,
) -> Verdict:
    """DEPLOY / ITERATE / ABANDON from the task comparisons and probe results (rules above)."""
    task_list = [tasks] if isinstance(tasks, TaskResult) else list(tasks)
    if not task_list:
        raise ValueError("decide() needs at least one task result")
    reasons: list[str] = []
    steps: list[str] = []
    decision: Decision = "DEPLOY"
    for task in task_list:
        d, reason, task_steps = _task_decision(task, thresholds)
        reasons.append(reason)
        steps.extend(s for s in task_steps if s not in steps)
        if _SEVERITY[d] > _SEVERITY[decision]:
            decision = d
        for baseline, share in task.identical_outputs.items():
            if share == 1.0 and task.n_examples > 0:
                reasons.append(
                    f"task {task.name!r}: the candidate's outputs equal {baseline}'s on every example"
                )
                steps.append("check that the fine-tuned weights / adapter are really loaded")

    regressed = [p for p in probes if p.status != "ok"]
    reasons.extend(_probe_reason(p) for p in probes)
    if regressed:
        if decision == "DEPLOY":
            decision = "ITERATE"
        if decision == "ITERATE":
            steps.extend(s for s in FORGETTING_STEPS if s not in steps)
        for p in regressed:
            if not p.significant and p.n_required:
                steps.append(
                    f"run the {p.name} probe on about {p.n_required} examples (now {p.n}) "
                    f"to confirm or rule out the {fmt_pct(p.rel_change)} drop"
                )
    if decision == "DEPLOY":
        steps.append(
            "deploy the candidate; keep the locked test set and gate new checkpoints with "
            "`tunecheck run --fail-on iterate`"
        )
    summary = {
        "DEPLOY": "the fine-tune beats the strongest baseline beyond noise and breaks nothing measured",
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
    return Verdict(decision=decision, summary=summary, reasons=reasons, next_steps=steps)


def exit_code(verdict: Verdict | None, fail_on: str = "never") -> int:
    """CI exit status: ``iterate`` fails unless DEPLOY, ``abandon`` fails only on ABANDON."""
    if fail_on not in ("iterate", "abandon", "never"):
        raise ValueError(f"fail_on must be iterate, abandon or never, not {fail_on!r}")
    if fail_on == "never":
        return 0
    if verdict is None:
        return 1
    if fail_on == "iterate":
        return 0 if verdict.decision == "DEPLOY" else 1
    return 1 if verdict.decision == "ABANDON" else 0
