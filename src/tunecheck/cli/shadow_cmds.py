"""``tunecheck shadow`` (the proxy, ``report``, ``export``) and ``tunecheck ab`` (A/B analysis)."""

from __future__ import annotations

import os

import typer

from tunecheck.cli import app, console

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
