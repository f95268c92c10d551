"""Log a finished run to the experiment trackers people already use: MLflow and W&B.

:func:`track_run` sends a :class:`~tunecheck.results.RunResult` — parameters (the
contenders and the training configuration), metrics (each contender's metrics, the
candidate's deltas with intervals and p-values, probe changes), the verdict as a tag and
the reports as artifacts — to every tracker configured in the spec's ``tracking:`` block
or on the command line. A tracker that fails never loses the evaluation: the run is
stored before anything is logged, and each failure comes back as a
:class:`TrackingOutcome` with its error (the CLI prints it and exits 2).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunecheck.errors import TunecheckError

__all__ = [
    "TrackingError",
    "TrackingOutcome",
    "merge_tracking",
    "record_outcomes",
    "stored_outcomes",
    "track_run",
]


class TrackingError(TunecheckError):
    """An experiment tracker could not be reached or refused what was logged."""


@dataclass
class TrackingOutcome:
    """What one tracker did with a run: where it went, or why it did not."""

    tracker: str
    ok: bool
    location: str | None = None
    run_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker,
            "ok": self.ok,
            "location": self.location,
            "run_id": self.run_id,
            "error": self.error,
        }


def merge_tracking(spec_tracking: Any, *, mlflow_uri: str | None, wandb_project: str | None) -> Any:
    """The spec's ``tracking:`` block with the ``--mlflow`` / ``--wandb`` flags applied."""
    from tunecheck.spec import MlflowSpec, TrackingSpec, WandbSpec

    tracking = spec_tracking.model_copy(deep=True) if spec_tracking else TrackingSpec()
    if mlflow_uri:
        if tracking.mlflow is not None:
            tracking.mlflow.tracking_uri = mlflow_uri
        else:
            tracking.mlflow = MlflowSpec(tracking_uri=mlflow_uri)
    if wandb_project:
        if tracking.wandb is not None:
            tracking.wandb.project = wandb_project
        else:
            tracking.wandb = WandbSpec(project=wandb_project)
    return tracking if (tracking.mlflow or tracking.wandb) else None


def track_run(
    result: Any, tracking: Any, *, report_dir: Path | None = None
) -> list[TrackingOutcome]:
    """Log ``result`` to each configured tracker; failures are returned, never raised."""
    if tracking is None:
        return []
    outcomes: list[TrackingOutcome] = []
    with tempfile.TemporaryDirectory(prefix="tunecheck-track-") as tmp:
        reports = _write_reports(result, Path(tmp))
        for name, cfg, log in (
            ("mlflow", tracking.mlflow, _mlflow),
            ("wandb", tracking.wandb, _wandb),
        ):
            if cfg is None:
                continue
            try:
                outcomes.append(log(result, cfg, reports))
            except TunecheckError as err:
                outcomes.append(TrackingOutcome(name, ok=False, error=str(err)))
            except Exception as err:  # a tracker's own failure must not lose the evaluation
                outcomes.append(
                    TrackingOutcome(name, ok=False, error=f"{type(err).__name__}: {err}")
                )
    return outcomes


def _write_reports(result: Any, folder: Path) -> list[Path]:
    import json

    from tunecheck.report import render_json, render_markdown

    paths = [folder / "report.json", folder / "report.md", folder / "contenders.json"]
    paths[0].write_text(render_json(result), encoding="utf-8")
    paths[1].write_text(render_markdown(result), encoding="utf-8")
    paths[2].write_text(
        json.dumps(
            {
                "contenders": [c.model_dump(mode="json") for c in result.contenders],
                "data": [d.model_dump(mode="json") for d in result.data],
                "libraries": result.libraries,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return paths


def _mlflow(result: Any, cfg: Any, reports: list[Path]) -> TrackingOutcome:
    from tunecheck.tracking.mlflow_log import log_mlflow

    return log_mlflow(result, cfg, reports)


def _wandb(result: Any, cfg: Any, reports: list[Path]) -> TrackingOutcome:
    from tunecheck.tracking.wandb_log import log_wandb

    return log_wandb(result, cfg, reports)


def record_outcomes(store: Any, run_id: str, outcomes: list[TrackingOutcome]) -> None:
    """Keep each tracking attempt with the run (``tunecheck show`` lists them)."""
    from sqlalchemy.orm import Session

    from tunecheck.store.schema import TrackingRow

    if not outcomes:
        return
    with Session(store.engine) as s, s.begin():
        for o in outcomes:
            s.add(
                TrackingRow(
                    run_id=run_id, tracker=o.tracker, ok=o.ok, location=o.location,
                    external_id=o.run_id, error=o.error,
                )
            )  # fmt: skip


def stored_outcomes(store: Any, run_id: str) -> list[dict[str, Any]]:
    """Every tracking attempt of a run, oldest first."""
    from sqlalchemy import select

    from tunecheck.store.schema import TrackingRow

    with store.engine.connect() as conn:
        rows = conn.execute(
            select(TrackingRow).where(TrackingRow.run_id == run_id).order_by(TrackingRow.id)
        )
        return [
            {
                "tracker": r.tracker, "ok": r.ok, "location": r.location,
                "run_id": r.external_id, "error": r.error,
                "created_at": r.created_at.isoformat(timespec="seconds"),
            }
            for r in rows
        ]  # fmt: skip
