"""Run-level verdict states (issue 13): DEPLOY-pending-review through the CLI, its hook, and
"no capability probes were run"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import scripted_backend  # noqa: F401 - registers the `scripted` backend
from typer.testing import CliRunner

from tunecheck.blind_check import record_blind_check
from tunecheck.cli import app
from tunecheck.data import split_dataset

SPEC = """\
seed: 3
bootstrap: 1000
contenders:
  - name: base+prompt
    model: scripted:prompted
    prompt:
      system: Answer with JSON.
  - name: finetuned
    model: scripted:tuned
task:
  name: tickets
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  metrics: [chrf]
  blind_check_examples: 80
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [
        {
            "id": f"t{i:04d}",
            "input": f"ticket {i}",
            "reference": json.dumps({"category": f"c{i % 4}"}),
        }
        for i in range(600)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(tmp_path / "data.jsonl", tmp_path / "splits", seed=5)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(answers))
    (tmp_path / "tunecheck.yaml").write_text(SPEC)
    return tmp_path


def test_generation_task_deploy_is_pending_review_until_the_blind_check(project: Path) -> None:
    url = f"sqlite:///{project / 'store.db'}"
    spec = str(project / "tunecheck.yaml")
    runner = CliRunner()
    out = runner.invoke(
        app, ["run", spec, "--store", url, "--fail-on", "iterate", "--no-probes", "--json"]
    )
    assert out.exit_code == 1, out.output  # not yet DEPLOY for CI
    data = json.loads(out.output)
    v = data["verdict"]
    assert (
        v["decision"] == "DEPLOY" and v["pending_review"] and v["label"] == "DEPLOY-pending-review"
    )
    run_id = data["run_id"]
    assert v["summary"] == (
        f"metrics say deploy; blind check of 80 examples not done yet: `tunecheck review {run_id}`"
    )
    assert "no capability probes were run (--no-probes)" in v["reasons"]
    assert v["qualifiers"] == ["capabilities not checked"]
    assert (
        runner.invoke(
            app, ["run", spec, "--store", url, "--fail-on", "abandon", "--no-probes", "--quiet"]
        ).exit_code
        == 0
    )
    listed = json.loads(runner.invoke(app, ["runs", "--store", url, "--json"]).output)
    assert listed[-1]["verdict"] == "DEPLOY-pending-review"

    text = runner.invoke(app, ["report", run_id, "--store", url, "-f", "terminal"]).output
    assert "DEPLOY-pending-review (capabilities not checked)" in text
    md = runner.invoke(app, ["report", run_id, "--store", url, "-f", "md"]).output
    assert md.startswith("## tunecheck: 🟡 DEPLOY-pending-review")

    record_blind_check(url, run_id, examples=80, passed=True, method="two reviewers")
    report = json.loads(runner.invoke(app, ["report", run_id, "--store", url, "-f", "json"]).output)
    assert report["verdict"]["label"] == "DEPLOY" and report["verdict"]["blind_check"]["done"]
    listed = {
        r["id"]: r
        for r in json.loads(runner.invoke(app, ["runs", "--store", url, "--json"]).output)
    }
    assert listed[run_id]["verdict"] == "DEPLOY"
