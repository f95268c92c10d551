"""MLflow: one MLflow run per tunecheck run (or into an existing one, e.g. the training run)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tunecheck.tracking import TrackingError, TrackingOutcome
from tunecheck.tracking import flatten as fl

#: MLflow's per-request limits of log_batch
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def check_reachable(uri: str) -> None:
    """Fail fast (seconds, not MLflow's minutes of retries) when a server URI is unreachable."""
    if uri.startswith(("http://", "https://")):
        import httpx

        try:
            httpx.get(uri.rstrip("/") + "/health", timeout=10.0)
        except httpx.HTTPError as err:
            raise TrackingError(
                f"MLflow tracking server {uri} cannot be reached ({type(err).__name__}: {err})",
                where="tracking.mlflow.tracking_uri",
                hint="start the server (`mlflow server`), fix the URI, or log locally with "
                "--mlflow sqlite:///mlflow.db; the evaluation itself is stored either way",
            ) from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).expanduser().parent
        if not folder.is_dir():
            raise TrackingError(
                f"the folder of the MLflow database does not exist: {folder}",
                where="tracking.mlflow.tracking_uri",
                hint="create it, or point tracking_uri at an existing folder",
            )


def _artifact_location(uri: str) -> str | None:
    """Next to a SQLite tracking DB (MLflow's default is ./mlruns under the working directory)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).expanduser().resolve()
        return (db.parent / "mlartifacts").as_uri()
    return None


def log_mlflow(result: Any, cfg: Any, reports: list[Path]) -> TrackingOutcome:
    """Log params, metrics, tags and the reports; returns where they went."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError(
            "MLflow is not installed",
            where="tracking.mlflow",
            hint="pip install 'tunecheck[tracking]' (or mlflow-skinny)",
        ) from None
    uri = cfg.tracking_uri
    check_reachable(uri)
    try:
        client = MlflowClient(tracking_uri=uri)
        created = cfg.run_id is None
        if cfg.run_id:
            try:
                run = client.get_run(cfg.run_id)
            except MlflowException as err:
                raise TrackingError(
                    f"no MLflow run {cfg.run_id!r} at {uri} ({err.message})",
                    where="tracking.mlflow.run_id",
                    hint="give the id of the training run (mlflow.active_run().info.run_id)",
                ) from None
            run_id = run.info.run_id
        else:
            exp = client.get_experiment_by_name(cfg.experiment)
            exp_id = (
                exp.experiment_id
                if exp is not None
                else client.create_experiment(
                    cfg.experiment, artifact_location=_artifact_location(uri)
                )
            )
            run = client.create_run(exp_id, run_name=cfg.run_name or f"tunecheck-{result.run_id}")
            run_id = run.info.run_id
        now = int(time.time() * 1000)
        # in a training run, the final numbers sit at the last training step
        step = 0
        if result.training is not None and result.training.trainer_state:
            step = int(result.training.trainer_state.get("global_step") or 0)
        metrics = [Metric(k, v, now, step) for k, v in fl.metrics(result).items()]
        params = [Param(k, v) for k, v in fl.params(result).items()]
        tags = [RunTag(k, v) for k, v in {**fl.tags(result), **cfg.tags}.items()]
        for chunk in _chunks(metrics, _BATCH["metrics"]):
            client.log_batch(run_id, metrics=chunk)
        for chunk in _chunks(params, _BATCH["params"]):
            client.log_batch(run_id, params=chunk)
        client.log_batch(run_id, tags=tags)
        for path in reports:
            client.log_artifact(run_id, str(path), artifact_path="tunecheck")
        if created:
            client.set_terminated(run_id, "FINISHED")
    except MlflowException as err:
        raise TrackingError(f"MLflow refused the run: {err.message}", where=uri) from None
    return TrackingOutcome("mlflow", ok=True, location=uri, run_id=run_id)
