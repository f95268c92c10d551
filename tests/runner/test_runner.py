"""The runner end to end on a scripted backend: verdict, resume, zero re-run calls, guards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import scripted_backend  # noqa: F401 - registers the `scripted` backend

from tunecheck.data import split_dataset
from tunecheck.errors import GuardError
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec

HERE = Path(__file__).parent
CATEGORIES = ["billing", "shipping", "technical", "account"]


def _reference(i: int) -> str:
    return json.dumps({"category": CATEGORIES[i % 4], "priority": ["low", "high"][i % 2]})


SPEC = """\
seed: 3
bootstrap: 2000
contenders:
  - name: base
    model: scripted:zero
  - name: base+prompt
    model: scripted:prompted
    prompt:
      system: Answer with JSON.
  - name: finetuned
    model: scripted:{candidate}
task:
  name: tickets
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  metrics: [json_exact_match, field_accuracy]
probes: []
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [
        {
            "id": f"t{i:04d}",
            "input": f"ticket number {i} about {CATEGORIES[i % 4]}",
            "reference": _reference(i),
        }
        for i in range(1000)
    ]
    data = tmp_path / "tickets.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(data, tmp_path / "splits", seed=5)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(answers))
    monkeypatch.setenv("TUNECHECK_SCRIPT_CALLS", str(tmp_path / "calls.log"))
    (tmp_path / "tunecheck.yaml").write_text(SPEC.format(candidate="tuned"))
    return tmp_path


def _calls(project: Path) -> int:
    log = project / "calls.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _outcomes(result) -> list:
    return [(e.id, e.outputs, e.scores) for t in result.tasks for e in t.examples]


def test_run_verdict_and_zero_call_rerun(project: Path) -> None:
    spec = load_spec(project / "tunecheck.yaml")
    store = f"sqlite:///{project / 'store.db'}"
    first = run(spec, options=RunOptions(store_url=store, show_progress=False))
    task = first.result.tasks[0]
    assert task.n_examples == 100
    # 300 answers plus the adapter guard's short greedy requests (4 examples x 3 models)
    assert first.model_calls == _calls(project) and first.model_calls == 300 + 3 * 4
    assert task.strongest_baseline == "base+prompt"
    values = {c.name: c.metrics["json_exact_match"] for c in task.contenders}
    assert (
        values["base"] == 0.0 and 0.35 < values["base+prompt"] < 0.65 and values["finetuned"] > 0.8
    )
    assert first.result.verdict.decision == "DEPLOY"

    loads = project / "calls.log.loads"
    assert sorted(loads.read_text().split()) == ["prompted", "tuned", "zero"]
    second = run(spec, options=RunOptions(store_url=store, show_progress=False))
    assert second.model_calls == 0 and _calls(project) == first.model_calls
    # a fully cached re-run never even loads the weights
    assert len(loads.read_text().split()) == 3
    assert _outcomes(second.result) == _outcomes(first.result)
    assert second.result.verdict == first.result.verdict


def test_identical_contenders_are_refused(project: Path) -> None:
    (project / "tunecheck.yaml").write_text(
        SPEC.format(candidate="prompted").replace(
            "scripted:prompted\n    prompt:\n      system: Answer with JSON.", "scripted:prompted"
        )
    )
    spec = load_spec(project / "tunecheck.yaml")
    with pytest.raises(GuardError, match=r"base\+prompt.*finetuned|finetuned.*base\+prompt"):
        run(
            spec, options=RunOptions(store_url=f"sqlite:///{project / 's.db'}", show_progress=False)
        )


def test_adapter_not_applied_is_refused(project: Path) -> None:
    (project / "tunecheck.yaml").write_text(SPEC.format(candidate="zero-copy"))
    spec = load_spec(project / "tunecheck.yaml")
    with pytest.raises(GuardError, match="indistinguishable"):
        run(
            spec, options=RunOptions(store_url=f"sqlite:///{project / 's.db'}", show_progress=False)
        )


DRIVER = """
import sys
sys.path.insert(0, {here!r})
import scripted_backend
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec
run(load_spec(sys.argv[1]), options=RunOptions(store_url=sys.argv[2], show_progress=False))
"""


@pytest.mark.slow
def test_resume_after_sigkill_makes_only_missing_calls(project: Path) -> None:
    spec_path = project / "tunecheck.yaml"
    store = f"sqlite:///{project / 'killed.db'}"
    driver = project / "driver.py"
    driver.write_text(DRIVER.format(here=str(HERE)))
    # the child stops answering after its 150th call and says so (a file): the kill lands at
    # that exact point, whatever the machine's load
    env = dict(os.environ, TUNECHECK_SCRIPT_BLOCK_AFTER="150")
    proc = subprocess.Popen([sys.executable, str(driver), str(spec_path), store], env=env)
    blocked = project / "calls.log.blocked"
    try:
        while not blocked.exists():
            assert proc.poll() is None, "the run ended before its 150th call"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    done_before = _calls(project)
    assert done_before == 150

    spec = load_spec(spec_path)
    resumed = run(spec, options=RunOptions(store_url=store, show_progress=False))
    # only what was missing is generated (at most one 8-request cache chunk was in flight)
    assert resumed.model_calls == _calls(project) - done_before
    assert 312 - done_before <= resumed.model_calls <= 312 - done_before + 8

    fresh = run(
        spec, options=RunOptions(store_url=f"sqlite:///{project / 'fresh.db'}", show_progress=False)
    )
    assert _outcomes(resumed.result) == _outcomes(fresh.result)
    assert resumed.result.verdict == fresh.result.verdict
