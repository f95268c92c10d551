"""MLflow (SQLite tracking URI) and W&B (offline run files): what a run logs, read back with
each library's own client or file format; tracker failures keep the evaluation."""

from __future__ import annotations

import glob
import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import wandb_records

from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec
from tunecheck.tracking import flatten

# found, not imported: importing MLflow costs seconds at collection
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("wandb") is None,
    reason="the `tracking` extra (mlflow-skinny, wandb) is needed",
)


@pytest.fixture(autouse=True)
def _quiet_trackers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


RUNNER = str(Path(__file__).parents[1] / "runner")
# the real entry point in a child process, with the scripted backend registered
MAIN = (
    f"import sys; sys.path.insert(0, {RUNNER!r}); import scripted_backend; "
    "from tunecheck.cli import main; sys.argv = ['tunecheck', *sys.argv[1:]]; main()"
)


def _main(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.mark.slow
def test_mlflow_run_holds_params_metrics_verdict_and_reports(project: Path, write_spec) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project / 'mlflow.db'}"
    spec = write_spec(options={"api_key": "sk-abcdefghijkl"}, extra=(
        f"tracking:\n  mlflow: {{tracking_uri: '{uri}', experiment: tickets-eval, "
        "run_name: nightly, tags: {team: search}}\n"
    ))  # fmt: skip
    outcome = run(load_spec(spec), options=RunOptions(show_progress=False))
    (t,) = outcome.tracking
    assert t.ok and t.tracker == "mlflow", t.error
    client = MlflowClient(uri)
    mrun = client.get_run(t.run_id)
    assert client.get_experiment(mrun.info.experiment_id).name == "tickets-eval"
    assert mrun.info.run_name == "nightly" and mrun.info.status == "FINISHED"
    result = outcome.result
    task = result.tasks[0]
    m = mrun.data.metrics
    # every contender's metrics, the deltas with intervals and p-values
    for c in task.contenders:
        for name, value in c.metrics.items():
            assert m[f"tickets/{flatten.key(c.name)}/{name}"] == pytest.approx(value)
    comp = task.comparison()
    base = f"tickets/delta/{flatten.key(comp.baseline)}/{comp.metric}"
    assert m[base] == pytest.approx(comp.delta)
    assert m[base + "_ci_low"] == pytest.approx(comp.ci_low)
    assert m[base + "_ci_high"] == pytest.approx(comp.ci_high)
    assert m[base + "_p_value"] == pytest.approx(comp.p_value)
    assert m["tickets/flips/fixed"] == len(task.flips.fixed)
    tags = mrun.data.tags
    assert tags["tunecheck.verdict"] == result.verdict.decision == "DEPLOY"
    assert tags["tunecheck.run_id"] == result.run_id and tags["team"] == "search"
    p = mrun.data.params
    assert p["contender.base_prompt.model"] == "scripted:prompted"
    assert p["contender.finetuned.fingerprint"] == result.contender_info().fingerprint
    assert p["contender.finetuned.options.api_key"] == "***"
    assert p["tunecheck.lock_hash"] == result.lock_hash
    # the reports as artifacts, byte for byte what the run stored
    files = {a.path for a in client.list_artifacts(t.run_id, "tunecheck")}
    assert files == {"tunecheck/report.json", "tunecheck/report.md", "tunecheck/contenders.json"}
    local = client.download_artifacts(t.run_id, "tunecheck/report.json", str(project / "dl"))
    assert json.loads(Path(local).read_text())["run_id"] == result.run_id
    assert "sk-abcdefghijkl" not in Path(local).read_text()


@pytest.mark.slow
def test_wandb_offline_run_files(project: Path, write_spec) -> None:
    spec = write_spec("prompted", extra=(
        f"tracking:\n  wandb: {{project: tickets, dir: '{project / 'wb'}', tags: [nightly]}}\n"
    ))  # fmt: skip
    outcome = run(load_spec(spec), options=RunOptions(show_progress=False))
    (t,) = outcome.tracking
    assert t.ok and t.tracker == "wandb", t.error
    (path,) = glob.glob(str(project / "wb" / "wandb" / f"offline-run-*-{t.run_id}" / "*.wandb"))
    logged = wandb_records.logged(path)
    result = outcome.result
    task = result.tasks[0]
    assert result.verdict.decision != "DEPLOY"
    assert f"verdict:{result.verdict.decision}" in logged["tags"] and "nightly" in logged["tags"]
    assert logged["summary"]["tunecheck.verdict"] == result.verdict.decision
    comp = task.comparison()
    base = f"tickets/delta/{flatten.key(comp.baseline)}/{comp.metric}"
    (row,) = logged["history"]
    assert row[base] == pytest.approx(comp.delta)
    assert row[base + "_p_value"] == pytest.approx(comp.p_value)
    assert row["tickets/finetuned/json_exact_match"] == pytest.approx(
        task.contender("finetuned").metrics["json_exact_match"]
    )
    assert logged["config"]["contender.finetuned.model"] == "scripted:prompted"
    assert logged["config"]["tunecheck.run_id"] == result.run_id
    (art,) = logged["artifacts"]
    assert art["type"] == "tunecheck-report"
    assert set(art["files"]) == {"report.json", "report.md", "contenders.json"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nothing listens there


@pytest.mark.slow
def test_tracking_failures_exit_2_and_keep_the_run(project: Path, write_spec) -> None:
    spec = write_spec()
    store = f"sqlite:///{project / 'runs.db'}"
    proc = _main("run", str(spec), "--quiet", "--mlflow", f"http://127.0.0.1:{_closed_port()}",
                 "--wandb", "bad/name", cwd=project)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "mlflow tracking failed" in proc.stderr and "cannot be reached" in proc.stderr
    assert "wandb tracking failed" in proc.stderr and "not a valid W&B project" in proc.stderr
    assert "the evaluation itself is stored" in proc.stderr
    assert "DEPLOY" in proc.stdout  # the report was printed before the tracking errors
    from tunecheck.store import open_store

    (row,) = open_store(store).list_runs()
    assert row["status"] == "completed" and row["verdict"] == "DEPLOY"
    # the failed attempts are kept with the run ...
    shown = json.loads(_main("show", row["id"], "--store", store, "--json", cwd=project).stdout)
    assert [(t["tracker"], t["ok"]) for t in shown["tracking"]] == [
        ("mlflow", False),
        ("wandb", False),
    ]
    assert "cannot be reached" in shown["tracking"][0]["error"]
    # ... and the stored run is logged later, once the tracker is there
    uri = f"sqlite:///{project / 'later.db'}"
    proc = _main("track", row["id"][:6], "--store", store, "--mlflow", uri, "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    (done,) = json.loads(proc.stdout)
    from mlflow.tracking import MlflowClient

    tags = MlflowClient(uri).get_run(done["run_id"]).data.tags
    assert tags["tunecheck.run_id"] == row["id"] and tags["tunecheck.verdict"] == "DEPLOY"
    proc = _main("show", row["id"], "--store", store, cwd=project)
    assert f"tracking mlflow: run {done['run_id']}" in proc.stdout


def test_wandb_online_without_key_and_disabled_mode(project: Path, write_spec, monkeypatch) -> None:
    from tunecheck.spec import WandbSpec
    from tunecheck.tracking import TrackingError
    from tunecheck.tracking.wandb_log import _check

    monkeypatch.setenv("HOME", str(project))  # no ~/.netrc
    with pytest.raises(TrackingError, match="online mode but no W&B API key"):
        _check(WandbSpec(project="tickets", mode="online"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(TrackingError, match="W&B would record nothing"):
        _check(WandbSpec(project="tickets"))


@pytest.mark.slow
def test_training_and_evaluation_in_one_mlflow_run(project: Path, write_spec, monkeypatch) -> None:
    """TunecheckCallback's numbers reach MLflow through transformers' own MLflowCallback
    (report_to="mlflow"), then `tunecheck run` logs the final evaluation into that run.

    A real Trainer needs a real model; here the Trainer is a stand-in holding the real
    TrainingArguments, TrainerState and CallbackHandler, and ``Trainer.log`` (the method
    the callback calls) is the real one. Only the callback's generation is replaced by a
    fixed score.
    """
    pytest.importorskip("transformers")
    from mlflow.tracking import MlflowClient
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.integrations import MLflowCallback
    from transformers.trainer_callback import CallbackHandler

    from tunecheck.training.callback import TaskPoint, TunecheckCallback

    uri = f"sqlite:///{project / 'mlflow.db'}"
    monkeypatch.chdir(project)  # MLflowCallback's experiment keeps artifacts in ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "finetune")
    spec_path = write_spec()
    args = TrainingArguments(output_dir=str(project / "out"), report_to=["mlflow"],
                             run_name="lora-r8", learning_rate=2e-4)  # fmt: skip
    cb = TunecheckCallback(spec_path, every_n_steps=None, sample_size=8, store=False,
                           verbose=False)  # fmt: skip
    scores = iter([0.55, 0.8])
    monkeypatch.setattr(
        cb, "evaluate",
        lambda model, tok, step, epoch: TaskPoint(step, {"json_exact_match": next(scores)}, 0.1),
    )  # fmt: skip

    class StandInTrainer:
        def __init__(self) -> None:
            self.args, self.state, self.control = args, TrainerState(), TrainerControl()
            self.callback_handler = CallbackHandler([MLflowCallback(), cb], None, None, None, None)

    trainer = StandInTrainer()
    cb.bind_trainer(trainer)
    from transformers import Trainer

    h, state = trainer.callback_handler, trainer.state
    h.on_train_begin(args, state, trainer.control)
    mlflow_cb = h.callbacks[0]
    run_id = mlflow_cb._ml_flow.active_run().info.run_id
    for step, loss in ((10, 1.2), (20, 0.7)):
        state.global_step = step
        Trainer.log(trainer, {"loss": loss})
        h.on_evaluate(args, state, trainer.control, metrics={})
    h.on_train_end(args, state, trainer.control)

    (project / "train_state").mkdir()
    (project / "train_state" / "trainer_state.json").write_text(json.dumps({"global_step": 20}))
    spec_path = write_spec(extra=(
        f"training: train_state\ntracking:\n  mlflow: {{tracking_uri: '{uri}', "
        f"run_id: {run_id}}}\n"
    ))  # fmt: skip
    outcome = run(load_spec(spec_path), options=RunOptions(show_progress=False))
    (t,) = outcome.tracking
    assert t.ok and t.run_id == run_id, t.error
    client = MlflowClient(uri)
    history = client.get_metric_history(run_id, "eval_task/json_exact_match")
    assert [(x.step, x.value) for x in history] == [(10, 0.55), (20, 0.8)]
    assert [x.value for x in client.get_metric_history(run_id, "loss")] == [1.2, 0.7]
    final = client.get_metric_history(run_id, "tickets/finetuned/json_exact_match")
    task = outcome.result.tasks[0]
    assert [(x.step, x.value) for x in final] == [
        (20, pytest.approx(task.contender("finetuned").metrics["json_exact_match"]))
    ]
    data = client.get_run(run_id).data
    assert data.params["learning_rate"] == "0.0002"  # logged by MLflowCallback
    assert data.params["training.trainer_state.global_step"] == "20"  # logged by tunecheck
    assert data.tags["tunecheck.verdict"] == "DEPLOY"


def test_mlflow_file_store_takes_every_metric_name(tmp_path: Path, monkeypatch) -> None:
    """MLflow's file store keeps each metric as a file: no name may be another's folder."""
    from mlflow.tracking import MlflowClient

    from tunecheck.report import load_json
    from tunecheck.spec import MlflowSpec
    from tunecheck.tracking.mlflow_log import log_mlflow

    result = load_json(
        (Path(__file__).parents[1] / "data" / "history" / "report_v1.json").read_text()
    )
    expected = flatten.metrics(result)
    names = set(expected)
    assert not [n for n in names if any(o.startswith(n + "/") for o in names)]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-in (3.x)
    uri = (tmp_path / "mlruns").as_uri()
    outcome = log_mlflow(result, MlflowSpec(tracking_uri=uri), [])
    logged = MlflowClient(uri).get_run(outcome.run_id).data.metrics
    assert logged == pytest.approx(expected) and len(logged) > 10
