"""A Markdown summary of a run, fit for a pull-request comment."""

from __future__ import annotations

from tunecheck.report import _fmt
from tunecheck.results import RunResult, TaskResult

ICONS = {"DEPLOY": "✅", "ITERATE": "🟡", "ABANDON": "🛑", "INCOMPLETE": "⚠️"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: RunResult) -> str:
    """Verdict first, then a table per task, the probe table, reasons and next steps."""
    lines: list[str] = []
    v = result.verdict
    if v is not None:
        icon = "🟡" if v.pending_review else ICONS[v.decision]
        lines += [f"## tunecheck: {icon} {_fmt.verdict_title(v)}", "", f"**{v.summary}**", ""]
    else:
        lines += ["## tunecheck: no verdict", ""]
    meta = [f"run `{result.run_id}`"]
    if result.spec_name:
        meta.append(f"spec `{result.spec_name}`")
    if result.candidate:
        meta.append(f"candidate `{result.candidate}`")
    meta.append(f"tunecheck {result.tool_version}")
    lines += [" · ".join(meta), ""]

    for task in result.tasks:
        lines += [
            f"### Task `{task.name}` ({task.n_examples} examples, primary metric `{task.primary_metric}`)",
            "",
            f"| contender | metric | value | Δ vs {_cell(task.strongest_baseline)} (pts) | 95% CI | p | p (Holm) |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, metric, value, comp in _fmt.task_rows(task):
            bold = "**" if metric == task.primary_metric else ""
            shown = metric + (" (lower is better)" if _fmt.lower_better(task, metric) else "")
            lines.append(
                f"| {_cell(_fmt.role(task, name))} | {bold}{shown}{bold} | {value} | "
                + (
                    f"{_fmt.pts(comp.delta)} | {_fmt.ci_pts(comp.ci_low, comp.ci_high)} | "
                    f"{_fmt.pval(comp.p_value)} | {_fmt.pval(comp.p_adjusted)} |"
                    if comp
                    else " |  |  |  |"
                )
            )
        note = task.comparison().note
        if note:
            lines += ["", f"_{note}_"]
        errors = [
            f"{c.name}: {c.errors} errors, {c.invalid} invalid"
            for c in task.contenders
            if c.errors or c.invalid
        ]
        if errors:
            lines += ["", "Unscored / unparsable outputs: " + "; ".join(errors) + "."]
        from tunecheck.code.report import sandbox_warnings

        for warning in sandbox_warnings(task):
            lines += ["", f"**Warning (sandbox):** {_cell(warning)}"]
        line = _fmt.length_line(task)
        if line:
            lines += ["", line[0].upper() + line[1:] + "."]
        length_rows = _fmt.length_rows(task)
        if length_rows:
            lines += [
                "",
                f"Length-adjusted (vs {_cell(task.strongest_baseline)}, at equal output length: "
                "paired regression of the score difference on the word-count difference, HC3):",
                "",
                "| metric | Δ (pts) | Δ at equal length (pts) | 95% CI | p | note |",
                "|---|---:|---:|---:|---:|---|",
            ]
            lines += [f"| {' | '.join(_cell(c) for c in row)} |" for row in length_rows]
        if task.judge is not None:
            from tunecheck.judge.report import judge_lines

            lines += ["", "**LLM judge**", ""] + [f"- {_cell(x)}" for x in judge_lines(task.judge)]
        if task.slice_comparisons:
            lines += [
                "",
                "<details><summary>Slices (Holm-adjusted)</summary>",
                "",
                "| slice | metric | n | candidate | baseline | Δ (pts) | 95% CI | p (Holm) |",
                "|---|---|---:|---:|---:|---:|---:|---:|",
            ]
            for c in task.slice_comparisons:
                lines.append(
                    f"| {_cell(c.slice or '')} | {c.metric} | {c.n} | {_fmt.value(c.candidate_value)} | "
                    f"{_fmt.value(c.baseline_value)} | {_fmt.pts(c.delta)} | "
                    f"{_fmt.ci_pts(c.ci_low, c.ci_high)} | {_fmt.pval(c.p_adjusted)} |"
                )
            lines += ["", "</details>"]
        if task.folds:
            lines += [
                "| fold | n | candidate | baseline | Δ (pts) | 95% CI | p |",
                "|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for f in task.folds:
                c = f.comparison
                lines.append(
                    f"| {f.fold} | {f.n} | {_fmt.value(c.candidate_value)} | "
                    f"{_fmt.value(c.baseline_value)} | {_fmt.pts(c.delta)} | "
                    f"{_fmt.ci_pts(c.ci_low, c.ci_high)} | {_fmt.pval(c.p_value)} |"
                )
        lines += _flip_lines(task)
        lines.append("")

    if result.probes:
        lines += [
            "### Capability probes (fine-tuned vs base)",
            "",
            "| probe | metric | n | base | fine-tuned | abs (pts) | rel | 95% CI (rel) | p | status | MDE |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for p in result.probes:
            status = (
                f"**{_fmt.probe_status(p)}**" if p.gate == "regression" else _fmt.probe_status(p)
            )
            lines.append(
                f"| {_cell(p.name)} | {p.metric} | {p.n} | {_fmt.value(p.base)} | {_fmt.value(p.finetuned)} | "
                f"{_fmt.pts(p.abs_change)} | {_fmt.pct(p.rel_change)} | "
                f"{_fmt.ci_pct(p.rel_ci_low, p.rel_ci_high)} | "
                f"{_fmt.pval(p.p_adjusted if p.p_adjusted is not None else p.p_value)} | {status} | "
                f"{_fmt.mde_pts(p.mde)} |"
            )
        lines.append("")
        lines += [
            f"- `{p.name}` is uninformative for this model: {_cell(p.note_uninformative)}"
            for p in result.probes
            if p.status == "uninformative"
        ]
        lines.append("")

    if v is not None:
        lines += ["### Why", ""] + [f"- {_cell(r)}" for r in v.reasons] + [""]
        if v.next_steps:
            lines += ["### Next steps", ""] + [f"1. {s}" for s in v.next_steps] + [""]
    if result.errors:
        lines += ["### Errors", ""] + [f"- {e}" for e in result.errors] + [""]
    lines += _contender_lines(result)
    return "\n".join(lines).rstrip() + "\n"


def _flip_lines(task: TaskResult) -> list[str]:
    from tunecheck.report import flips_section

    flips = task.flips
    if flips is None or not (flips.broken or flips.fixed):
        return []
    lines = [
        "",
        f"<details><summary>Flipped examples: {_cell(flips_section.summary(flips))}</summary>",
        "",
        f"| | example | {_cell(flips.before)} | {_cell(flips.after)} | {_cell(flips.after)} output |",
        "|---|---|---:|---:|---|",
    ]
    for kind, f, _b, cand_out in flips_section.rows(task):
        lines.append(
            f"| {kind} | `{_cell(f.id)}` | {flips_section._score(f.before)} | "
            f"{flips_section._score(f.after)} | {_cell(cand_out)} |"
        )
    note = flips_section.more(task)
    lines += ["", f"Broken: worst first; fixed: best first. {note}".rstrip(), "", "</details>"]
    return lines


def _contender_lines(result: RunResult) -> list[str]:
    """What exactly was compared (schema-2 results)."""
    if not result.contenders:
        return []
    lines = [
        "<details><summary>What was compared</summary>",
        "",
        "| contender | role | model | fingerprint | adapter | prompt fp | generation |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.contenders:
        gen = ", ".join(f"{k}={v}" for k, v in c.generation.items() if v not in (None, []))
        lines.append(
            f"| {_cell(c.name)} | {c.role} | `{_cell(c.model)}` | `{(c.fingerprint or '-')[:12]}` | "
            f"{_cell(c.adapter_path or '-')} | `{(c.prompt_fingerprint or '-')[:12]}` | {_cell(gen)} |"
        )
    for d in result.data:
        lines.append("")
        lines.append(
            f"Data `{d.task}`: `{_cell(d.data)}` sha256 `{(d.data_sha256 or '-')[:12]}`, "
            f"lock sha256 `{(d.lock_sha256 or '-')[:12]}`, {d.n_examples} examples."
        )
    training = result.training
    if training is not None:
        state = training.trainer_state or {}
        steps = state.get("global_step")
        lines += ["", f"Training configuration from `{_cell(training.source)}`"
                  + (f" ({steps} steps)" if steps is not None else "") + "."]  # fmt: skip
    if result.libraries:
        lines += ["", "Libraries: " + ", ".join(f"{k} {v}" for k, v in result.libraries.items())]
    lines += ["", "</details>", ""]
    return lines
