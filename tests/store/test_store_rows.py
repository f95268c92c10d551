"""The store's reads are typed rows: a run stored by the runner (scripted backend) reads back
field by field, on SQLite and on PostgreSQL (``store_url``, tests/store/conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))

import scripted_backend

from tunecheck import __version__
from tunecheck.errors import TunecheckError
from tunecheck.store import (
    ContenderRecord,
    OutputRecord,
    RunDetail,
    RunRecord,
    TrainingPoint,
    open_store,
)
from tunecheck.store.liveness import host_name

SPEC = """\
seed: 3
bootstrap: 200
guard_examples: 0
contenders:
  - name: base
    model: scripted:zero
  - name: base+prompt
    model: scripted:prompted
    prompt:
      system: Answer with the label.
  - name: finetuned
    model: scripted:tuned
task:
  name: labels
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  metrics: [exact_match]
probes: []
"""


@pytest.fixture()
def stored_run(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """One complete run of the runner on the scripted backend, stored at ``store_url``."""
    from tunecheck.data import split_dataset
    from tunecheck.runner import RunOptions, run
    from tunecheck.spec import load_spec

    rows = [{"id": f"r{i:03d}", "input": f"item {i}", "reference": f"L{i % 3}"} for i in range(200)]
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(data, tmp_path / "splits", seed=5)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(answers))
    (tmp_path / "tunecheck.yaml").write_text(SPEC)
    spec = load_spec(tmp_path / "tunecheck.yaml")
    outcome = run(spec, options=RunOptions(store_url=store_url, show_progress=False))
    return spec, outcome, open_store(store_url)


def test_a_stored_run_reads_back_as_typed_rows(stored_run) -> None:
    spec, outcome, store = stored_run
    result = outcome.result
    (listed,) = store.list_runs()
    assert type(listed) is RunRecord
    assert listed.id == outcome.run_id == result.run_id
    assert listed.status == "completed"
    assert listed.verdict == result.verdict.decision
    assert listed.name == "labels"
    assert listed.spec_hash == spec.fingerprint()
    assert listed.lock_hash == result.lock_hash and listed.lock_hash
    assert listed.tool_version == __version__
    # this process ran it, on this machine
    assert listed.host == host_name() and listed.pid == os.getpid()
    created = datetime.fromisoformat(listed.created_at)
    assert listed.finished_at is not None and listed.heartbeat_at is not None
    assert created <= datetime.fromisoformat(listed.finished_at)
    assert created <= datetime.fromisoformat(listed.heartbeat_at)

    run = store.get_run(listed.id[:7])  # a unique prefix is enough
    assert type(run) is RunDetail
    # the detail repeats the listing's fields exactly
    assert {k: run[k] for k in listed.to_dict()} == listed.to_dict()
    assert run.error is None and run.overrides is None and run.spec_path is None
    assert run.spec == spec.model_dump(mode="json")
    assert run.result == result.model_dump(mode="json")
    assert [(c.name, c.model, c.role) for c in run.contenders] == [
        ("base", "scripted:zero", "baseline"),
        ("base+prompt", "scripted:prompted", "baseline"),
        ("finetuned", "scripted:tuned", "candidate"),
    ]
    assert all(type(c) is ContenderRecord for c in run.contenders)
    for c, cs in zip(run.contenders, spec.contenders, strict=True):
        mode = cs.model.split(":", 1)[1]
        assert c.model_fingerprint == scripted_backend.ScriptedModel.fingerprint_for(mode)
        assert c.prompt_fingerprint == cs.prompt.build().fingerprint()
    assert len({c.prompt_fingerprint for c in run.contenders}) == 2  # only one has a prompt

    # every (contender, example) output, with the text the result holds for it
    outputs = store.outputs(run.id)
    assert all(type(o) is OutputRecord for o in outputs)
    task = result.tasks[0]
    expected = {(name, e.id): e.outputs[name] for e in task.examples for name in e.outputs}
    assert len(expected) == 3 * task.n_examples
    assert {(o.contender, o.example_id): o.text for o in outputs} == expected
    assert {o.task for o in outputs} == {"labels"} and all(o.error is None for o in outputs)
    assert store.outputs(run.id, task="other") == []


def test_rows_are_frozen_read_by_key_and_print_as_json(stored_run) -> None:
    _, _, store = stored_run
    run = store.get_run(store.list_runs()[0].id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "failed"  # type: ignore[misc]
    # dict-style reads, for code written when the store returned dicts
    assert run["status"] == run.status and run["contenders"][2]["role"] == "candidate"
    with pytest.raises(KeyError, match="nope"):
        run["nope"]
    # `tunecheck show --json` prints this: contenders as a list of plain dicts
    data = json.loads(json.dumps(run.to_dict()))
    assert data["contenders"][0] == {
        "name": "base",
        "model": "scripted:zero",
        "model_fingerprint": run.contenders[0].model_fingerprint,
        "prompt_fingerprint": run.contenders[0].prompt_fingerprint,
        "role": "baseline",
    }
    assert data["result"] == run.result and data["id"] == run.id
    assert set(data) == {f.name for f in dataclasses.fields(RunDetail)}


def test_get_run_of_an_unknown_id_or_an_ambiguous_prefix(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(TunecheckError, match="no run 'nothing'") as err:
        store.get_run("nothing")
    assert err.value.where == store.url
    store.create_run(name="a", spec_hash="h", run_id="abc111")
    store.create_run(name="b", spec_hash="h", run_id="abc222")
    with pytest.raises(TunecheckError, match="prefix 'abc' is ambiguous"):
        store.get_run("abc")
    assert store.get_run("abc2").name == "b"
    with pytest.raises(TunecheckError, match="no run 'abd'"):
        store.get_run("abd")
    # a run still running has no result, no finish time and no contenders yet
    fresh = store.get_run("abc111")
    assert (fresh.status, fresh.result, fresh.finished_at, fresh.contenders) == (
        "running",
        None,
        None,
        (),
    )


def test_training_points_are_typed(store_url: str) -> None:
    store = open_store(store_url)
    store.put_training_point("r", 20, "checkpoint-20", {"eval_labels/exact_match": 0.5})
    store.put_training_point("r", 10, None, {"eval_labels/exact_match": 0.25})
    points = store.training_points("r")
    assert all(type(p) is TrainingPoint for p in points)
    assert [(p.step, p.checkpoint, p.metrics) for p in points] == [
        (10, None, {"eval_labels/exact_match": 0.25}),
        (20, "checkpoint-20", {"eval_labels/exact_match": 0.5}),
    ]
    assert isinstance(points[0].created_at, datetime)
    assert store.training_points("other") == []
