"""``tunecheck shadow`` (the proxy, ``report``, ``export``) and ``tunecheck ab`` (A/B analysis)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tunecheck.cli import app, console, print_json

if TYPE_CHECKING:
    from tunecheck.shadow.ab import ABResult
    from tunecheck.shadow.report import PairedDiff, ShadowReport

shadow_app = typer.Typer(
    help="Shadow deployment: mirror real traffic to the candidate (or split users), "
    "then report on the logged pairs. Without a sub-command: run the proxy.",
    invoke_without_command=True,
    no_args_is_help=False,
)
ab_app = typer.Typer(
    help="A/B tests: plan the sample size, analyse outcome events.", no_args_is_help=True
)
app.add_typer(shadow_app, name="shadow")
app.add_typer(ab_app, name="ab")


@shadow_app.callback()
def shadow_cmd(
    ctx: typer.Context,
    production: str | None = typer.Option(
        None, "--production", help="Production base URL (OpenAI-compatible, ends in /v1)."
    ),
    candidate: str | None = typer.Option(
        None, "--candidate", help="Candidate base URL (OpenAI-compatible, ends in /v1)."
    ),
    candidate_model: str | None = typer.Option(
        None, "--candidate-model", help="Rewrite `model` in requests sent to the candidate."
    ),
    candidate_key_env: str = typer.Option(
        "TUNECHECK_CANDIDATE_API_KEY",
        "--candidate-key-env",
        help="Environment variable holding the candidate's API key (never the caller's).",
    ),
    mirror_fraction: float = typer.Option(
        1.0, "--mirror-fraction", help="Share of requests mirrored to the candidate (0-1)."
    ),
    split: float | None = typer.Option(
        None,
        "--split",
        help="A/B instead of mirroring: share of users (0-1, exclusive) served by the candidate.",
    ),
    experiment: str = typer.Option(
        "shadow", "--experiment", help="Experiment name: salts the sticky user assignment."
    ),
    user_header: str = typer.Option(
        "x-user-id", "--user-header", help="Header holding the user key (for --split)."
    ),
    user_field: str = typer.Option(
        "user",
        "--user-field",
        help="Request field holding the user key when the header is absent (dots for nesting).",
    ),
    no_content: bool = typer.Option(
        False, "--no-content", help="Log hashes and lengths only, never request or answer text."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8400, "--port", help="Port to listen on (0: any free port)."),
    queue_size: int = typer.Option(
        256, "--mirror-queue", help="Mirror copies waiting at most; beyond it they are dropped."
    ),
    concurrency: int = typer.Option(
        16, "--mirror-concurrency", help="Mirror calls in flight to the candidate at most."
    ),
    candidate_timeout: float = typer.Option(
        60.0, "--candidate-timeout", help="Seconds a mirror call may take in total."
    ),
    production_timeout: float = typer.Option(
        600.0, "--production-timeout", help="Seconds a production call may take."
    ),
    shutdown_grace: float = typer.Option(
        5.0,
        "--shutdown-grace",
        help="Seconds to let queued mirrors finish on shutdown (the rest stay `pending`).",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the mirror sampling."),
    store: str | None = typer.Option(
        None, "--store", help="Run store URL [default: TUNECHECK_STORE or .tunecheck/]."
    ),
) -> None:
    """Run the mirroring proxy (production answers the caller; the candidate is logged)."""
    if ctx.invoked_subcommand is not None:
        return
    from tunecheck.errors import TunecheckError
    from tunecheck.shadow.config import ShadowConfig
    from tunecheck.shadow.proxy import serve

    if not production or not candidate:
        raise TunecheckError(
            "tunecheck shadow needs --production URL and --candidate URL",
            hint="e.g. tunecheck shadow --production http://127.0.0.1:8001/v1 "
            "--candidate http://127.0.0.1:8002/v1",
        )
    config = ShadowConfig(
        production_url=production,
        candidate_url=candidate,
        candidate_api_key=os.environ.get(candidate_key_env) or None,
        candidate_model=candidate_model,
        mirror_fraction=mirror_fraction,
        split=split,
        experiment=experiment,
        user_header=user_header,
        user_field=user_field or None,
        keep_content=not no_content,
        queue_size=queue_size,
        mirror_concurrency=concurrency,
        candidate_timeout=candidate_timeout,
        production_timeout=production_timeout,
        shutdown_grace=shutdown_grace,
        seed=seed,
    )
    serve(
        config,
        host=host,
        port=port,
        store_url=store,
        echo=lambda m: console.print(m, highlight=False, soft_wrap=True, markup=False),
    )


@ab_app.command("plan")
def ab_plan_cmd(
    mde: float = typer.Option(..., "--mde", help="Smallest difference worth detecting (absolute)."),
    baseline_rate: float | None = typer.Option(
        None, "--baseline-rate", help="Control conversion rate (binary outcome)."
    ),
    sd: float | None = typer.Option(None, "--sd", help="Outcome standard deviation (continuous)."),
    baseline_mean: float = typer.Option(0.0, "--baseline-mean", help="Control mean (continuous)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    power: float = typer.Option(0.8, "--power", help="Probability of detecting the MDE."),
    split: float = typer.Option(0.5, "--split", help="Share of units in the treatment."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Units needed: fixed-horizon z-test and the always-valid sequential test."""
    from tunecheck.errors import TunecheckError
    from tunecheck.shadow.plan import plan_binary, plan_continuous

    if (baseline_rate is None) == (sd is None):
        raise TunecheckError(
            "give --baseline-rate (binary outcome) or --sd (continuous outcome)",
            hint="e.g. tunecheck ab plan --baseline-rate 0.3 --mde 0.02",
        )
    if baseline_rate is not None:
        plan = plan_binary(baseline_rate, mde, alpha=alpha, power=power, share=split)
    else:
        plan = plan_continuous(
            sd or 0.0, mde, baseline_mean=baseline_mean, alpha=alpha, power=power, share=split
        )
    if as_json:
        print_json(plan.to_dict())
        return
    what = (
        f"rate {plan.baseline:g} -> {plan.baseline + plan.mde:g}"
        if plan.outcome == "binary"
        else f"mean {plan.baseline:g} -> {plan.baseline + plan.mde:g} (sd {sd:g})"
    )
    console.print(
        f"[bold]A/B plan[/]: detect {what} with power {plan.power:g} at alpha {plan.alpha:g}, "
        f"{plan.treatment_share:.0%} of units in the treatment",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  fixed horizon (look once):    {plan.fixed_n_total:>9,} units "
        f"({plan.fixed_n_control:,} control + {plan.fixed_n_treatment:,} treatment)",
        highlight=False,
    )
    console.print(
        f"  sequential (peek any time):   {plan.sequential_n_total:>9,} units "
        f"({plan.sequential_n_control:,} + {plan.sequential_n_treatment:,}); "
        f"analyse with `tunecheck ab analyze EVENTS --mde {plan.mde:g}`",
        highlight=False,
        soft_wrap=True,
    )


@ab_app.command("analyze")
def ab_analyze_cmd(
    events: Path = typer.Argument(
        ..., help="Events (.jsonl, .csv, .parquet): unit_id, variant, outcome."
    ),
    control: str | None = typer.Option(None, "--control", help="The control variant's name."),
    treatment: str | None = typer.Option(None, "--treatment", help="The treatment's name."),
    expected_split: float = typer.Option(
        0.5,
        "--expected-split",
        help="Designed share of units in the treatment (for the SRM check).",
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    mde: float | None = typer.Option(
        None, "--mde", help="The planned MDE: tunes the sequential test as `ab plan` did."
    ),
    tau: float | None = typer.Option(None, "--tau", help="Mixing sd of the sequential test."),
    lower_is_better: bool = typer.Option(
        False, "--lower-is-better", help="A smaller outcome is better (errors, edits, latency)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Difference, always-valid sequential test and sample-ratio-mismatch check.

    Exit status 1 when the split is broken (sample ratio mismatch): no conclusion."""
    from tunecheck.shadow.ab import analyze

    res = analyze(
        events,
        control=control,
        treatment=treatment,
        expected_share=expected_split,
        alpha=alpha,
        mde=mde,
        tau=tau,
        higher_is_better=not lower_is_better,
    )
    if as_json:
        print_json(res.to_dict())
    else:
        _print_ab(res)
    if res.srm.mismatch:
        raise typer.Exit(1)


def _print_ab(res: ABResult) -> None:
    fmt = "{:.2%}" if res.outcome == "binary" else "{:.4g}"
    pts = (lambda x: f"{x * 100:+.2f} pts") if res.outcome == "binary" else (lambda x: f"{x:+.4g}")
    lines = [
        f"[bold]A/B[/] {res.path}: {res.outcome} outcome, {res.events:,} events",
        f"  {res.control:<12} {res.units_control:>8,} units   mean {fmt.format(res.mean_control)}",
        f"  {res.treatment:<12} {res.units_treatment:>8,} units   mean {fmt.format(res.mean_treatment)}",
        f"  difference {pts(res.difference)}  {1 - res.alpha:.0%} CI [{pts(res.ci_low)}, {pts(res.ci_high)}] (look once)",
        f"  sequential: always-valid p = {res.seq_p_value:.3g}, "
        f"CI [{pts(res.seq_ci_low)}, {pts(res.seq_ci_high)}] (valid at every look; mSPRT, tau {res.tau:.3g})",
        f"  split: {res.srm.observed_treatment_share:.2%} in {res.treatment} "
        f"(designed {res.srm.expected_treatment_share:.0%}), SRM chi-square p = {res.srm.p_value:.3g}",
    ]
    if res.both_variants:
        lines.append(
            f"  [yellow]{res.both_variants} unit(s) appear in both variants and were excluded[/]"
            f" (e.g. {', '.join(res.both_variants_examples[:3])})"
        )
    colour = "red" if res.srm.mismatch else "green" if "BETTER" in res.decision else "yellow"
    lines.append(f"[bold {colour}]{res.decision}[/]: {res.reason}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


@shadow_app.command("report")
def shadow_report_cmd(
    session: str | None = typer.Option(
        None, "--session", help="Session id or prefix [default: the latest]."
    ),
    all_sessions: bool = typer.Option(False, "--all", help="Every session together."),
    top: int = typer.Option(5, "--top", help="How many disagreeing pairs to show."),
    store: str | None = typer.Option(None, "--store", help="Run store URL."),
    judge: str | None = typer.Option(
        None,
        "--judge",
        help="Judge the pairs with this model (openai:NAME@URL or hf:PATH), both orders: "
        "the candidate's win rate over production, cached in the store.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """What the logged pairs say: errors, latency, length, agreement, disagreements."""
    from tunecheck.shadow.log import load_requests
    from tunecheck.shadow.report import build_report

    sessions, rows = load_requests(store, session, latest=not all_sessions)
    judge_fn = None
    if judge is not None:
        from tunecheck.shadow.judging import shadow_judge
        from tunecheck.store import open_store

        judge_fn = shadow_judge(rows, judge, open_store(store))
    rep = build_report(sessions, rows, top=top, judge=judge_fn)
    if judge_fn is not None and rep.judge is not None:
        rep.judge["cost"] = judge_fn.cost.model_dump()
    if as_json:
        print_json(rep.to_dict())
        return
    _print_report(rep)


def _print_report(rep: ShadowReport) -> None:
    out = []
    ids = ", ".join(s["id"] for s in rep.sessions)
    c = rep.counts
    out.append(
        f"[bold]shadow report[/] (session {ids}): {c['requests']:,} requests, "
        f"{rep.pairs:,} complete pairs; mirrors: {c['done']:,} done, {c['pending']:,} unfinished, "
        f"{c['dropped']:,} dropped (queue full), {c['not_sampled']:,} not sampled"
    )

    def diff_line(d: PairedDiff, unit: str = "", pct: bool = False) -> str:
        f = (lambda x: f"{x * 100:.1f}%") if pct else (lambda x: f"{x:.4g}{unit}")
        g = (lambda x: f"{x * 100:+.1f} pts") if pct else (lambda x: f"{x:+.4g}{unit}")
        line = (
            f"  {d.name:<22} production {f(d.production):>10}  candidate {f(d.candidate):>10}  "
            f"diff {g(d.difference)} [{g(d.ci_low)}, {g(d.ci_high)}]"
        )
        if d.p_value is not None:
            line += f"  McNemar p = {d.p_value:.3g}"
        return line

    if rep.errors:
        out.append(diff_line(rep.errors, pct=True))
    if rep.latency_ms:
        out.append(diff_line(rep.latency_ms, " ms"))
        m = rep.latency_median_ms
        out.append(
            f"  {'median latency':<22} production {m['production']:>8.1f} ms  candidate "
            f"{m['candidate']:>8.1f} ms  ({m['ratio']:.2f}x)"
        )
    if rep.length:
        out.append(diff_line(rep.length))
    if rep.identical is not None:
        line = f"  {'identical answers':<22} {rep.identical:.1%}"
        if rep.similarity_chrf is not None:
            line += f"; mean chrF similarity {rep.similarity_chrf:.3f}"
        out.append(line)
    for d in rep.reference_free:
        out.append(diff_line(d, pct=d.name in ("empty", "valid_json")) + f"  ({d.note})")
    if rep.judge:
        j = rep.judge
        out.append(
            f"  judge: candidate win rate {j.get('win_rate', float('nan')):.1%} "
            f"[{j.get('ci_low', float('nan')):.1%}, {j.get('ci_high', float('nan')):.1%}], "
            f"{j.get('wins', 0)} wins / {j.get('losses', 0)} losses / {j.get('ties', 0)} ties, "
            f"sign test p = {j.get('sign_test_p', float('nan')):.3g}, {j['judge_errors']} judge errors"
        )
    for name, v in rep.variants.items():
        err = "n/a" if v["error_rate"] is None else f"{v['error_rate']:.1%}"
        lat = "n/a" if v["latency_median_ms"] is None else f"{v['latency_median_ms']:.1f} ms"
        out.append(
            f"  split {name:<11} {v['requests']:>7,} requests from {v['units']:,} units "
            f"({v['unassigned']:,} without a user key): errors {err}, median latency {lat}"
        )
    if rep.disagreements:
        out.append("[bold]where they disagree most[/]")
        for dis in rep.disagreements:
            sim = "" if dis.similarity is None else f" (similarity {dis.similarity:.2f})"
            out.append(f"  {dis.request_id[:12]}{sim}: {dis.why}")
            out.append(f"    request:    {dis.request}")
            out.append(f"    production: {dis.production}")
            out.append(f"    candidate:  {dis.candidate}")
    for note in rep.notes:
        out.append(f"[yellow]note:[/] {note}")
    for line in out:
        console.print(line, highlight=False, soft_wrap=True)


@shadow_app.command("export")
def shadow_export_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for shadow.jsonl."),
    session: str | None = typer.Option(None, "--session", help="Session id or prefix."),
    all_sessions: bool = typer.Option(False, "--all", help="Every session together."),
    store: str | None = typer.Option(None, "--store", help="Run store URL."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Production traffic as a new data set (input, production's answer as reference)."""
    from tunecheck.shadow.export import export_pairs
    from tunecheck.shadow.log import load_requests

    _, rows = load_requests(store, session, latest=not all_sessions)
    res = export_pairs(rows, out)
    if as_json:
        print_json(
            {
                "path": str(res.path),
                "rows": res.rows,
                "skipped_errors": res.skipped_errors,
                "skipped_repeats": res.skipped_repeats,
                "skipped_no_content": res.skipped_no_content,
            }
        )
        return
    console.print(
        f"wrote {res.rows:,} rows to {res.path} (skipped: {res.skipped_repeats} repeated, "
        f"{res.skipped_errors} failed, {res.skipped_no_content} without content)\n"
        f"lock it as a test set: tunecheck split {res.path} --out {out / 'splits'}",
        highlight=False,
        soft_wrap=True,
    )
