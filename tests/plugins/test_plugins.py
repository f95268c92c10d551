"""User extensions reach `tunecheck run`: a README-style backend and metric via `plugins:`,
and a metric from an installed package's entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunecheck.data import split_dataset
from tunecheck.errors import SpecError
from tunecheck.spec import load_spec

# A backend written exactly as the README describes it: a Model subclass with the two
# calls (generate; loglikelihood is optional) and a constructor taking the target.
BACKEND = '''
import hashlib
from tunecheck import models
from tunecheck.models import Generation, Model, backend


@backend("echo")
class Echo(Model):
    """Answers every request with the reference when the target says so, else 'no'."""

    def __init__(self, target: str) -> None:
        self.target = target

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.target.encode()).hexdigest()

    def generate(self, requests, progress=None):
        out = []
        for r in requests:
            text = r.prompt if isinstance(r.prompt, str) else r.prompt[-1]["content"]
            out.append(Generation([text.split("=")[-1] if self.target == "right" else "no"]))
            if progress:
                progress(1)
        return out
'''

METRIC = """
import numpy as np
from tunecheck.metrics import MetricScores, metric


@metric("answer_length")
def answer_length(outputs, examples, ctx):
    per = np.array([float(len(o)) for o in outputs])
    return MetricScores("answer_length", float(per.mean()) if len(per) else float("nan"),
                        per, [e.id for e in examples], kind="continuous")
"""

SPEC = """\
plugins: [echo_backend.py, {metric_module}]
bootstrap: 500
contenders:
  - name: base
    model: echo:wrong
  - name: finetuned
    model: echo:right
task:
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  metrics: [exact_match, answer_length]
probes: []
"""


def _project(tmp_path: Path, metric_module: str) -> Path:
    rows = [
        {"id": f"q{i}", "input": f"q{i}=a{i % 7}", "reference": f"a{i % 7}"} for i in range(300)
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(data, tmp_path / "splits", seed=1)
    (tmp_path / "echo_backend.py").write_text(BACKEND)
    (tmp_path / "tunecheck.yaml").write_text(SPEC.format(metric_module=metric_module))
    return tmp_path


def _run(project: Path, env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra}
    proc = subprocess.run(
        [sys.executable, "-m", "tunecheck", "run", "tunecheck.yaml", "--json", "--quiet"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _metric_values(result: dict, metric: str) -> dict[str, float]:
    [task] = result["tasks"]
    return {c["name"]: c["metrics"][metric] for c in task["contenders"]}


@pytest.mark.slow
def test_readme_backend_and_plugin_file_metric_run(tmp_path: Path) -> None:
    project = _project(tmp_path, "length_metric")
    (project / "length_metric.py").write_text(METRIC)
    result = _run(project, {"PYTHONPATH": os.pathsep.join([str(project), *sys.path])})
    assert _metric_values(result, "exact_match") == {"base": 0.0, "finetuned": 1.0}
    lengths = _metric_values(result, "answer_length")
    assert lengths["base"] == 2.0  # "no"
    assert lengths["finetuned"] == 2.0  # "a0".."a6"
    assert result["verdict"]["decision"] == "DEPLOY"


@pytest.mark.slow
def test_entry_point_metric_is_found_without_plugins(tmp_path: Path) -> None:
    """A metric from an installed distribution's `tunecheck.metrics` entry point."""
    project = _project(tmp_path, "echo_backend.py")
    site = tmp_path / "site"
    (site / "tc_length_plugin").mkdir(parents=True)
    (site / "tc_length_plugin" / "__init__.py").write_text(METRIC)
    dist = site / "tc_length_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tc-length-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[tunecheck.metrics]\nanswer_length = tc_length_plugin\n"
    )
    spec = project / "tunecheck.yaml"
    spec.write_text(spec.read_text().replace(", echo_backend.py]", "]"))
    result = _run(project, {"PYTHONPATH": os.pathsep.join([str(site), *sys.path])})
    assert _metric_values(result, "answer_length") == {"base": 2.0, "finetuned": 2.0}


def test_missing_plugin_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    spec = tmp_path / "tunecheck.yaml"
    spec.write_text(
        SPEC.format(metric_module="no_such_module_xyz").replace("echo_backend.py, ", "")
    )
    with pytest.raises(SpecError, match=r"plugins\[0\].*no_such_module_xyz"):
        load_spec(spec)
    spec.write_text(SPEC.format(metric_module="missing.py"))
    (tmp_path / "echo_backend.py").write_text(BACKEND)
    with pytest.raises(SpecError, match=r"plugins\[1\].*missing\.py.*does not exist"):
        load_spec(spec)


def test_backend_without_matching_constructor_is_a_clear_error() -> None:
    from tunecheck.errors import BackendError
    from tunecheck.models import Model, backend, load_model

    @backend("needs-two")
    class NeedsTwo(Model):
        def __init__(self, target: str, required: int) -> None:
            self.target = target

        @property
        def fingerprint(self) -> str:
            return "x"

        def generate(self, requests, progress=None):
            return []

    with pytest.raises(BackendError, match=r"needs-two.*could not be built"):
        load_model("needs-two:abc")
