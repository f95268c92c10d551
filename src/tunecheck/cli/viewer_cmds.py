"""Verbs of the local web app: ``view`` (results viewer) and ``review`` (blind human review)."""

from __future__ import annotations

import csv
import io
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tunecheck.cli import app, console, err_console, print_json
from tunecheck.errors import TunecheckError

if TYPE_CHECKING:
    from tunecheck.review import ReviewSummary

StoreOpt = typer.Option(
    None, "--store", envvar="TUNECHECK_STORE",
    help="SQLAlchemy URL of the run store (default: sqlite in .tunecheck/).",
)  # fmt: skip
HostOpt = typer.Option(
    "127.0.0.1", "--host",
    help="Interface to bind. Anything but loopback needs --token-file (others can reach it).",
)  # fmt: skip
PortOpt = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port).")
TokenOpt = typer.Option(
    None, "--token-file",
    help="File holding the viewer's secret token (else a fresh random one each start).",
)  # fmt: skip

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _token(host: str, token_file: Path | None) -> str:
    if host not in _LOOPBACK and token_file is None:
        raise TunecheckError(
            f"refusing to serve on {host} without --token-file",
            hint="other machines can reach this address: keep a long secret token in a file "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))' > token`) and "
            "pass --token-file token, or use the default --host 127.0.0.1",
        )
    if token_file is None:
        return secrets.token_urlsafe(32)
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise TunecheckError(f"cannot read the token file: {err}", where=str(token_file)) from None
    if len(token) < 16:
        raise TunecheckError(
            "the token is shorter than 16 characters", where=str(token_file),
            hint="write a long random token into the file",
        )  # fmt: skip
    return token


def _serve(
    store: str | None, host: str, port: int, token: str, urls: list[tuple[str, str]]
) -> None:
    """Bind first (so the printed URLs carry the real port), then serve until Ctrl-C."""
    import socket

    import uvicorn

    from tunecheck.viewer.app import create_app

    allowed = None if host not in _LOOPBACK else ["127.0.0.1", "localhost", "[::1]"]
    application = create_app(store, token=token, allowed_hosts=allowed or ["*"])
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        raise TunecheckError(
            f"cannot listen on {host}:{port}: {err}", hint="pick --port 0"
        ) from None
    real_port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    for label, tok in urls:
        console.print(f"{label}: http://{shown}:{real_port}/?token={tok}", soft_wrap=True)
    console.print("[dim]Ctrl-C stops the server[/]")
    # the access log would print each first request's ?token=...: tokens are never logged
    config = uvicorn.Config(application, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


@app.command("view")
def view_cmd(
    store: str | None = StoreOpt,
    host: str = HostOpt,
    port: int = PortOpt,
    token_file: Path | None = TokenOpt,
) -> None:
    """Serve the local results viewer: runs, one run's tables, charts and example browser."""
    token = _token(host, token_file)
    _serve(store, host, port, token, [("viewer", token)])


@app.command("review")
def review_cmd(
    target: str = typer.Argument(..., help="RUN id, or `export`/`status` followed by RUN."),
    run_id: str | None = typer.Argument(None, help="The run, after `export` or `status`."),
    n: int = typer.Option(60, "--n", min=1, help="Items to review (stratified by slice)."),
    reviewers: int = typer.Option(1, "--reviewers", min=1, help="One secret URL per reviewer."),
    task: str | None = typer.Option(None, "--task", help="Task to review (default: the first)."),
    show_reference: bool = typer.Option(
        False, "--show-reference", help="Show the reference answer to reviewers."
    ),
    new: bool = typer.Option(
        False, "--new", help="Start a new review even if one of this run is open."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Sampling and A/B order seed."),
    fmt: str = typer.Option("csv", "--format", "-f", help="export: csv or jsonl."),
    output: Path | None = typer.Option(None, "--output", "-o", help="export: write to a file."),
    no_serve: bool = typer.Option(
        False, "--no-serve", help="Create the review and print its tokens, do not serve."
    ),
    as_json: bool = typer.Option(False, "--json", help="status: print JSON."),
    judge: Path | None = typer.Option(
        None,
        "--judge",
        help="status: JSONL of an LLM judge's verdicts (example_id, winner) to compare with the humans.",
    ),
    store: str | None = StoreOpt,
    host: str = HostOpt,
    port: int = PortOpt,
    token_file: Path | None = TokenOpt,
) -> None:
    """Blind human review of a run: `review RUN` serves the review page (one URL per reviewer);
    `review status RUN` prints the human win rate; `review export RUN` writes every label."""
    from tunecheck.review import (
        create_review,
        export_labels,
        reissue_tokens,
        reviews_of,
        summarize,
    )
    from tunecheck.store import open_store

    st = open_store(store)
    if target in ("export", "status"):
        if run_id is None:
            raise TunecheckError(f"`tunecheck review {target}` needs a run id")
        if target == "export":
            rows = export_labels(st, run_id)
            text = _export(rows, fmt)
            if output:
                output.write_text(text, encoding="utf-8")
                err_console.print(f"wrote {len(rows)} labels to {output}")
            else:
                typer.echo(text, nl=False)
            return
        summaries = [summarize(st, r["id"]) for r in reviews_of(st, run_id)]
        agreements = []
        from tunecheck.review import judge_human_agreement
        from tunecheck.review.judge_link import judge_verdicts_from_run, load_judge_verdicts

        if judge is not None:
            verdicts = load_judge_verdicts(judge)
            agreements = [judge_human_agreement(s.per_example, verdicts) for s in summaries]
        else:  # the run's own pairwise judge, when it judged the same pair
            result = st.get_run(run_id).result or {}
            from_run = [
                judge_verdicts_from_run(
                    result, task=s.task, candidate=s.candidate, baseline=s.baseline
                )
                if result
                else {}
                for s in summaries
            ]
            if any(from_run):
                agreements = [
                    judge_human_agreement(s.per_example, v)
                    for s, v in zip(summaries, from_run, strict=True)
                ]
        if as_json:
            rows = [s.model_dump(mode="json", exclude={"per_example"}) for s in summaries]
            for row, agree in zip(rows, agreements, strict=False):
                row["judge_agreement"] = agree.model_dump(mode="json")
            print_json(rows)
            return
        if not summaries:
            console.print(f"no review of run {run_id} yet: `tunecheck review {run_id}` starts one")
        for k, s in enumerate(summaries):
            console.print(_status_line(s))
            if agreements:
                a = agreements[k]
                kappa = "n/a" if a.kappa is None else f"{a.kappa:.2f}"
                share = "n/a" if a.percent_agreement is None else f"{a.percent_agreement:.0%}"
                console.print(
                    f"  judge vs humans on {a.n_items} items: {share} agree, kappa {kappa}"
                )
        return
    if run_id is not None:
        raise TunecheckError(f"unexpected argument {run_id!r}", hint="tunecheck review RUN")
    token = _token(host, token_file)
    open_reviews = [] if new else reviews_of(st, target)
    open_reviews = [r for r in open_reviews if not summarize(st, r["id"]).completed]
    if open_reviews:
        review_id = open_reviews[0]["id"]
        issued = reissue_tokens(st, review_id)
        console.print(
            f"resuming review {review_id} of run {open_reviews[0]['run_id']} (labels kept; "
            "new URLs, the old ones no longer work; --new starts another review)"
        )
    else:
        created = create_review(
            st, target, n=n, reviewers=reviewers, task=task, show_reference=show_reference,
            seed=seed,
        )  # fmt: skip
        issued = created.reviewers
        console.print(
            f"review {created.review_id}: {created.n_items} items of task {created.task} "
            f"({created.candidate} vs {created.baseline}, names hidden; {created.left_out} "
            "examples with identical or missing outputs left out)"
        )
    if no_serve:
        for r in issued:
            console.print(f"{r.name}: token {r.token}", soft_wrap=True)
        return
    _serve(store, host, port, token, [(r.name, r.token) for r in issued] + [("viewer", token)])


def _status_line(s: ReviewSummary) -> str:
    w = s.win
    rate = "n/a" if w.win_rate is None else f"{w.win_rate:.1%} [{w.ci_low:.1%}, {w.ci_high:.1%}]"
    p = "n/a" if w.p_value is None else f"{w.p_value:.3g}"
    agree = ""
    if s.agreement and s.agreement.kappa is not None:
        agree = f" · {s.agreement.method} kappa {s.agreement.kappa:.2f}"
    done = "completed" if s.completed else "in progress"
    people = ", ".join(f"{r.name} {r.labelled}/{s.n_items}" for r in s.reviewers)
    return (
        f"review {s.review_id} ({done}: {people}): {s.candidate} wins {w.wins}, "
        f"{s.baseline} wins {w.losses}, ties {w.ties} · human win rate {rate} · "
        f"sign test p={p}{agree}"
    )


def _export(rows: list[dict], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if fmt != "csv":
        raise TunecheckError(f"unknown export format {fmt!r}", hint="use --format csv or jsonl")
    buf = io.StringIO()
    fields = [
        "review_id", "run_id", "task", "example_id", "slice", "position", "reviewer", "candidate",
        "baseline", "candidate_side", "choice", "winner", "comment", "labelled_at",
    ]  # fmt: skip
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
