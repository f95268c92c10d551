"""The terminal report (rich): a table per task, the probe table, the verdict in colour."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunecheck.report import _fmt
from tunecheck.results import RunResult, TaskResult

COLOURS = {
    "DEPLOY": "bold green",
    "ITERATE": "bold yellow",
    "ABANDON": "bold red",
    "INCOMPLETE": "bold magenta",
}
STATUS = {"ok": "green", "warning": "yellow", "FAIL": "bold red", "uninformative": "dim"}


def _task_table(task: TaskResult) -> Table:
    table = Table(
        title=f"task {task.name} · {task.n_examples} examples · primary metric {task.primary_metric}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption=f"Δ: {task.candidate} minus the strongest baseline ({task.strongest_baseline}*), "
        "in points, with its 95% bootstrap interval; ↓: lower is better",
        caption_justify="left",
    )
    table.add_column("contender", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("Δ pts [95% CI]", justify="right", no_wrap=True)
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("p Holm", justify="right", no_wrap=True)
    table.add_column("err/inv", justify="right", no_wrap=True)
    for name, metric, value, comp in _fmt.task_rows(task):
        contender = task.contender(name)
        label = f"[bold]{name}[/]" if name == task.candidate else name
        if name == task.strongest_baseline:
            label += "*"
        invalid = contender.details.get(metric, {}).get("invalid", contender.invalid)
        shown = metric + (" ↓" if _fmt.lower_better(task, metric) else "")
        table.add_row(
            label,
            f"[bold]{shown}[/]" if metric == task.primary_metric else shown,
            value,
            f"{_fmt.pts(comp.delta)} {_fmt.ci_pts(comp.ci_low, comp.ci_high)}" if comp else "",
            _fmt.pval(comp.p_value) if comp else "",
            _fmt.pval(comp.p_adjusted) if comp else "",
            f"{contender.errors}/{invalid}",
        )
    return table


def _slice_table(task: TaskResult) -> Table | None:
    if not task.slice_comparisons:
        return None
    table = Table(
        title=f"slices: {task.candidate} vs {task.strongest_baseline} (p Holm-adjusted across slices)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("slice", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for col in ("n", "cand.", "base.", "Δ pts [95% CI]", "p Holm"):
        table.add_column(col, justify="right", no_wrap=True)
    for c in task.slice_comparisons:
        table.add_row(
            c.slice or "",
            c.metric,
            str(c.n),
            _fmt.value(c.candidate_value),
            _fmt.value(c.baseline_value),
            f"{_fmt.pts(c.delta)} {_fmt.ci_pts(c.ci_low, c.ci_high)}",
            _fmt.pval(c.p_adjusted),
        )
    return table


def _length_table(task: TaskResult) -> Table | None:
    rows = _fmt.length_rows(task)
    if not rows:
        return None
    table = Table(
        title=f"length-adjusted: {task.candidate} vs {task.strongest_baseline} at equal output "
        "length (paired regression on the word-count difference, HC3)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("metric", no_wrap=True)
    for col in ("Δ pts", "Δ equal length", "95% CI", "p"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("note")
    for row in rows:
        table.add_row(*row)
    return table


def _flip_table(task: TaskResult) -> Table | None:
    from tunecheck.report import flips_section

    if task.flips is None or not (task.flips.broken or task.flips.fixed):
        return None
    note = flips_section.more(task)
    table = Table(
        title=f"flipped examples: {flips_section.summary(task.flips)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption=f"broken: worst first; fixed: best first; {flips_section.CAP} shown each way"
        + (f"; {note}" if note else ""),
        caption_justify="left",
    )
    table.add_column("", no_wrap=True)
    table.add_column("example", no_wrap=True)
    table.add_column(task.flips.before, justify="right", no_wrap=True)
    table.add_column(task.flips.after, justify="right", no_wrap=True)
    table.add_column(f"{task.flips.after} output")
    for kind, f, _base_out, cand_out in flips_section.rows(task):
        colour = "red" if kind == "broken" else "green"
        table.add_row(
            f"[{colour}]{kind}[/]",
            f.id,
            flips_section._score(f.before),
            flips_section._score(f.after),
            escape(cand_out),
        )
    return table


def _probe_table(result: RunResult) -> Table:
    base = result.probes[0].base_name if result.probes else "base"
    table = Table(
        title=f"capability probes: fine-tuned vs {base}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("probe", no_wrap=True)
    for col in ("n", "base", "tuned", "Δ pts", "rel [95% CI]", "p", "status", "MDE pts"):
        table.add_column(
            col, justify="left" if col == "status" else "right", no_wrap=col.startswith("rel")
        )
    for p in result.probes:
        colour = STATUS[p.status]
        table.add_row(
            p.name,
            str(p.n),
            _fmt.value(p.base),
            _fmt.value(p.finetuned),
            _fmt.pts(p.abs_change),
            f"{_fmt.pct(p.rel_change)} {_fmt.ci_pct(p.rel_ci_low, p.rel_ci_high)}",
            _fmt.pval(p.p_adjusted if p.p_adjusted is not None else p.p_value),
            f"[{colour}]{_fmt.probe_status(p)}[/]",
            "n/a" if p.mde is None else f"{p.mde * 100:.1f}",
        )
    return table


def _fold_table(task: TaskResult) -> Table:
    table = Table(
        title=f"folds: {task.candidate} vs {task.strongest_baseline} per fold (the verdict uses the pooled numbers)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("fold", justify="right")
    for col in ("n", "cand.", "base.", "Δ pts [95% CI]", "p"):
        table.add_column(col, justify="right", no_wrap=True)
    for f in task.folds:
        c = f.comparison
        table.add_row(
            str(f.fold),
            str(f.n),
            _fmt.value(c.candidate_value),
            _fmt.value(c.baseline_value),
            f"{_fmt.pts(c.delta)} {_fmt.ci_pts(c.ci_low, c.ci_high)}",
            _fmt.pval(c.p_value),
        )
    return table


def render_terminal(result: RunResult, console: Console | None = None) -> None:
    """Print the whole report to ``console`` (a new stdout console by default)."""
    console = console or Console()
    for task in result.tasks:
        console.print(_task_table(task))
        comp = task.comparison()
        if comp.note:
            console.print(f"  [dim]{task.primary_metric}: {comp.note}[/]")
        from tunecheck.code.report import sandbox_warnings

        for warning in sandbox_warnings(task):
            console.print(
                f"  warning: sandbox: {warning}", style="yellow", highlight=False, markup=False
            )
        line = _fmt.length_line(task)
        if line:
            console.print(f"  {line}", highlight=False, markup=False)
        lengths = _length_table(task)
        if lengths is not None:
            console.print(lengths)
        slices = _slice_table(task)
        if slices is not None:
            console.print(slices)
        if task.folds:
            console.print(_fold_table(task))
        if task.judge is not None:
            from rich.markup import escape

            from tunecheck.judge.report import judge_lines

            for line in judge_lines(task.judge):
                style = "yellow" if line.startswith("warning:") else "dim"
                console.print(f"  [{style}]{escape(line)}[/]", highlight=False)
        flipped = _flip_table(task)
        if flipped is not None:
            console.print(flipped)
    if result.probes:
        console.print(_probe_table(result))
        for p in result.probes:
            if p.status == "uninformative":
                console.print(
                    f"  [dim]{p.name}: uninformative for this model: {p.note_uninformative}[/]",
                    highlight=False,
                )
    for err in result.errors:
        console.print(f"[red]error:[/] {err}", highlight=False)
    verdict = result.verdict
    if verdict is None:
        console.print("[dim]no verdict[/]")
        return
    colour = "bold yellow" if verdict.pending_review else COLOURS[verdict.decision]
    console.print(
        f"\n[{colour}]{_fmt.verdict_title(verdict)}[/] — {verdict.summary}",
        highlight=False,
        markup=True,
    )
    for reason in verdict.reasons:
        console.print(f"  • {reason}", highlight=False, markup=False)
    if verdict.next_steps:
        console.print("[bold]next steps[/]")
        for step in verdict.next_steps:
            console.print(f"  → {step}", highlight=False, markup=False)
