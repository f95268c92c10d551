"""Plain-text lines about a task's judge (cost, rubric, win rates, bias), for every report."""

from __future__ import annotations

from tunecheck.judge.agreement import Estimate
from tunecheck.judge.result import JudgeTaskResult, PairwiseResult

LOW_CONSISTENCY = 0.7
"""Below this position consistency a judge's pairwise verdicts are mostly order noise."""


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _p(p: float | None) -> str:
    if p is None:
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def warnings(pw: PairwiseResult) -> list[str]:
    """Reasons to distrust this pairwise result."""
    out = []
    if pw.position_consistency is not None and pw.position_consistency < LOW_CONSISTENCY:
        out.append(
            f"the judge changed its verdict with the order on {1 - pw.position_consistency:.0%} "
            "of examples: its preferences are largely position noise"
        )
    if pw.first_position_rate is not None and abs(pw.first_position_rate - 0.5) > 0.2:
        out.append(
            f"the judge picked response A in {pw.first_position_rate:.0%} of its decisive "
            "single-order verdicts (position bias)"
        )
    if pw.verbosity.note:
        out.append(pw.verbosity.note)
    if pw.errors:
        out.append(f"{pw.errors} example(s) without a usable judgement (left out)")
    return out


def _est(e: Estimate | None, fmt: str = ".2f") -> str:
    if e is None or e.value is None:
        return "n/a"
    ci = f" [{e.ci_low:{fmt}}, {e.ci_high:{fmt}}]" if e.ci_low is not None else ""
    return f"{e.value:{fmt}}{ci}"


def human_line(pw: PairwiseResult) -> str:
    """The judge's agreement with the people's labels attached to the run."""
    a = pw.human_agreement
    assert a is not None
    line = (
        f"judge vs people ({pw.human_labels}): {a.n_used} of {a.n} judged examples labelled "
        f"with a majority; accuracy {_est(a.accuracy)}, Cohen's kappa {_est(a.cohen_kappa)}"
    )
    if a.fleiss_kappa is not None:
        line += f"; Fleiss' kappa among {a.annotators} people {_est(a.fleiss_kappa)}"
    line += f"; tie share judge {_est(a.judge_tie_share)} vs people {_est(a.human_tie_share)}"
    if a.humans_prefer_longer is not None:
        line += (
            f"; the longer output preferred by the judge {_est(a.judge_prefers_longer)} "
            f"vs people {_est(a.humans_prefer_longer)}"
        )
    if a.n_used == 0:
        line += " (no labelled example matches this pair: check ids, task and contender names)"
    return line


def judge_lines(judge: JudgeTaskResult) -> list[str]:
    """The judge section of a task report, one line per fact."""
    c = judge.cost
    lines = [
        f"judge {judge.model}: {c.calls} new calls, {c.cached} cached, {c.repairs} repairs; "
        f"tokens in/out {c.tokens_in}/{c.tokens_out} new, "
        f"{c.cached_tokens_in}/{c.cached_tokens_out} cached"
    ]
    if judge.rubric is not None:
        for name, means in judge.rubric.means.items():
            parts = ", ".join(
                f"{k} {'n/a' if v is None else f'{v:.2f}'}"
                + ("" if judge.rubric.scales[k] == "1-5" else " pass")
                for k, v in means.items()
            )
            err = judge.rubric.errors.get(name, 0)
            lines.append(
                f"rubric {name}: {parts} (n={judge.rubric.judged.get(name, 0)}"
                + (f", {err} judge errors" if err else "")
                + ")"
            )
    for pw in judge.pairwise:
        ci = (
            f"[{pw.ci_low:.3f}, {pw.ci_high:.3f}]"
            if pw.ci_low is not None and pw.ci_high is not None
            else "[n/a]"
        )
        rate = "n/a" if pw.win_rate is None else f"{pw.win_rate:.3f}"
        lines.append(
            f"pairwise {pw.candidate} vs {pw.baseline}: win rate {rate} {ci} "
            f"({pw.wins} wins, {pw.losses} losses, {pw.ties} ties of which {pw.inconsistent} "
            f"order flips; sign test {_p(pw.p_value)}, n={pw.n})"
        )
        v = pw.verbosity
        bias = (
            f"bias checks: position consistency {_pct(pw.position_consistency)}, "
            f"response A chosen {_pct(pw.first_position_rate)}; judge prefers the longer output "
            f"{_pct(v.judge_prefers_longer)} (n={v.n})"
        )
        if v.metric is not None:
            bias += f" vs {v.metric} {_pct(v.metric_prefers_longer)} (n={v.metric_n})"
        lines.append(bias)
        if pw.human_agreement is not None:
            lines.append(human_line(pw))
        lines += [f"warning: {w}" for w in warnings(pw)]
    lines += [f"warning: {w}" for w in judge.warnings]
    return lines
