"""Weights & Biases: one W&B run per tunecheck run, offline by default (``wandb sync`` later)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tunecheck.tracking import TrackingError, TrackingOutcome
from tunecheck.tracking import flatten as fl

# W&B refuses these characters in project names
_BAD_PROJECT = re.compile(r"[/\\#?%:]")


def _check(cfg: Any) -> None:
    if not cfg.project or _BAD_PROJECT.search(cfg.project) or len(cfg.project) > 128:
        raise TrackingError(
            f"{cfg.project!r} is not a valid W&B project name",
            where="tracking.wandb.project",
            hint="use letters, digits, - and _ (no / \\ # ? % :), at most 128 characters",
        )
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    if env_mode in ("disabled", "dryrun") and env_mode != cfg.mode:
        raise TrackingError(
            f"WANDB_MODE={env_mode} in the environment: W&B would record nothing "
            f"(tunecheck was asked for mode {cfg.mode})",
            where="tracking.wandb.mode",
            hint="unset WANDB_MODE, or set WANDB_MODE=offline",
        )
    if cfg.mode == "online" and not (
        os.environ.get("WANDB_API_KEY") or Path("~/.netrc").expanduser().exists()
    ):
        raise TrackingError(
            f"W&B project {cfg.project!r} is set to online mode but no W&B API key is configured",
            where="tracking.wandb.mode",
            hint="use mode: offline (the default) and `wandb sync` the run later, or "
            "`wandb login` first",
        )


def log_wandb(result: Any, cfg: Any, reports: list[Path]) -> TrackingOutcome:
    """Log config, summary metrics, the verdict (tag and summary) and the reports."""
    try:
        import wandb
    except ImportError:
        raise TrackingError(
            "wandb is not installed",
            where="tracking.wandb",
            hint="pip install 'tunecheck[tracking]' (or wandb)",
        ) from None
    _check(cfg)
    folder = Path(cfg.dir).expanduser() if cfg.dir else Path(os.environ.get("WANDB_DIR", "."))
    folder.mkdir(parents=True, exist_ok=True)
    verdict = result.verdict.decision if result.verdict else "NONE"
    settings = wandb.Settings(silent=True, console="off", save_code=False)
    try:
        run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            name=cfg.run_name or f"tunecheck-{result.run_id}",
            mode=cfg.mode,
            dir=str(folder),
            config=fl.params(result),
            tags=[f"verdict:{verdict}", *cfg.tags],
            job_type="tunecheck-eval",
            settings=settings,
            reinit="create_new",
        )
    except Exception as err:
        raise TrackingError(
            f"W&B could not start a run ({type(err).__name__}: {err})",
            where="tracking.wandb",
            hint="use mode: offline, or check `wandb login` and the network",
        ) from None
    try:
        metrics = fl.metrics(result)
        run.log(metrics)
        run.summary.update({**metrics, **fl.tags(result)})
        artifact = wandb.Artifact(f"tunecheck-{result.run_id}", type="tunecheck-report")
        for path in reports:
            artifact.add_file(str(path), name=path.name)
        run.log_artifact(artifact)
        location = str(Path(run.dir).parent)
        run_id = run.id
    finally:
        run.finish()
    return TrackingOutcome("wandb", ok=True, location=location, run_id=run_id)
