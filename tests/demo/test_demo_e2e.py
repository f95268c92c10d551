"""`tunecheck demo --quick` end to end on the real embedded model, asserting on what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunecheck.report import load_json

# the quick demo takes ~3-5 minutes on a 2-core CPU (the full one 9-16): above the default limit
pytestmark = pytest.mark.timeout(3600)


def run_quick_demo(out: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tunecheck", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        cwd=out.parent,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "tunecheck-demo"
    proc = run_quick_demo(out, timeout=2400)
    assert "Step 7/7" in proc.stdout and "Reproduce each step" in proc.stdout
    return out


def test_three_contenders_on_the_same_test_ids(demo_dir: Path) -> None:
    result = load_json((demo_dir / "report.json").read_text())
    task = result.tasks[0]
    assert {c.name for c in task.contenders} == {"base", "base+prompt", "finetuned"}
    lock = json.loads((demo_dir / "splits" / "tunecheck.lock.json").read_text())
    test_ids = lock["splits"]["test"]["ids"]
    assert [e.id for e in task.examples] == test_ids
    for example in task.examples:
        assert set(example.outputs) == {"base", "base+prompt", "finetuned"}
    assert task.n_examples == len(test_ids) > 0


def _primary_comparison(result):
    task = result.tasks[0]
    comp = next(
        c
        for c in task.comparisons
        if c.metric == task.primary_metric
        and c.baseline == "base+prompt"
        and c.candidate == "finetuned"
        and c.slice is None
    )
    # the delta is the mean paired difference of the per-example scores (recomputed here)
    diffs = [
        e.scores["finetuned"][task.primary_metric] - e.scores["base+prompt"][task.primary_metric]
        for e in task.examples
        if e.scores["finetuned"].get(task.primary_metric) is not None
        and e.scores["base+prompt"].get(task.primary_metric) is not None
    ]
    assert comp.delta == pytest.approx(sum(diffs) / len(diffs), abs=1e-9)
    return task, comp


def test_quick_demo_concludes_what_the_readme_says(demo_dir: Path) -> None:
    """`--quick` trains 12 steps: too few to learn the format. The README says the demo then
    shows the fine-tune significantly *worse* than the prompted base, verdict ABANDON."""
    result = load_json((demo_dir / "report.json").read_text())
    task, comp = _primary_comparison(result)
    assert task.primary_metric == "field_accuracy" and task.strongest_baseline == "base+prompt"
    assert comp.delta < 0 and comp.p_value is not None and comp.p_value < 0.05
    assert comp.significant
    assert result.verdict is not None and result.verdict.decision == "ABANDON"
    assert any("field_accuracy" in r for r in result.verdict.reasons), result.verdict.reasons
    assert result.verdict.next_steps
    assert {p.name for p in result.probes} == {"arithmetic", "reasoning", "instructions"}
    for probe in result.probes:
        assert probe.base is not None and probe.finetuned is not None
        assert probe.abs_change == pytest.approx(probe.finetuned - probe.base)
    md = (demo_dir / "report.md").read_text()
    assert "ABANDON" in md


@pytest.mark.model
@pytest.mark.skipif(
    os.environ.get("TUNECHECK_FULL_DEMO") != "1",
    reason="the full demo takes 9-16 minutes on a 2-core CPU: set TUNECHECK_FULL_DEMO=1",
)
def test_full_demo_concludes_what_the_readme_says(tmp_path: Path) -> None:
    """The default demo (48 LoRA steps): the fine-tune beats the prompted base on the task
    with p < 0.05, and the verdict names the probe that regressed (README, "What the demo
    shows")."""
    out = tmp_path / "tunecheck-demo"
    proc = subprocess.run(
        [sys.executable, "-m", "tunecheck", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        cwd=tmp_path,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = load_json((out / "report.json").read_text())
    _, comp = _primary_comparison(result)
    assert comp.delta > 0 and comp.p_value is not None and comp.p_value < 0.05
    failed = [p.name for p in result.probes if p.status == "FAIL"]
    assert failed, [(p.name, p.status) for p in result.probes]
    assert result.verdict is not None and result.verdict.decision == "ITERATE"
    for name in failed:
        assert any(name in r for r in result.verdict.reasons), (name, result.verdict.reasons)
    # the 135M model is at the floor of the reasoning probe: reported, never FAIL or blocking
    reasoning = next(p for p in result.probes if p.name == "reasoning")
    assert reasoning.status == "uninformative" and reasoning.gate == "uninformative", reasoning
    assert any(
        "reasoning probe" in r and "uninformative for this model" in r
        for r in result.verdict.reasons
    )


def test_callback_metrics_in_trainer_log_history(demo_dir: Path) -> None:
    state = json.loads((demo_dir / "finetune" / "trainer_state.json").read_text())
    task_points = [h for h in state["log_history"] if any(k.startswith("eval_task/") for k in h)]
    assert task_points, "TunecheckCallback logged no eval_task/* metric"
    assert any("eval_task/field_accuracy" in h for h in task_points)
    assert (demo_dir / "finetune" / "adapter" / "adapter_config.json").exists()
    diagnosis = json.loads((demo_dir / "diagnosis.json").read_text())
    assert diagnosis["pattern"] in {"healthy", "overfitting", "underfitting", "unstable", "no_eval"}


def test_generated_spec_runs_from_cache(demo_dir: Path) -> None:
    """The written tunecheck.yaml is loadable by `tunecheck run`, which re-uses every generation."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunecheck",
            "run",
            str(demo_dir / "tunecheck.yaml"),
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rerun = load_json(proc.stdout)
    first = load_json((demo_dir / "report.json").read_text())
    assert rerun.meta["model_calls"] == 0
    assert [e.outputs for e in rerun.tasks[0].examples] == [
        e.outputs for e in first.tasks[0].examples
    ]
    assert rerun.verdict == first.verdict
    assert (demo_dir / "commands.sh").read_text().count("tunecheck ") >= 4


def test_demo_rerun_reuses_the_adapter_and_every_generation(demo_dir: Path) -> None:
    """Running the demo again trains nothing and sends no request to a model."""
    first = json.loads((demo_dir / "demo.json").read_text())
    adapter = demo_dir / "finetune" / "adapter" / "adapter_model.safetensors"
    mtime = adapter.stat().st_mtime_ns
    proc = run_quick_demo(demo_dir, timeout=600)
    assert "reused cached adapter" in proc.stdout
    again = json.loads((demo_dir / "demo.json").read_text())
    assert again["model_calls"] == 0
    assert again["run_id"] != first["run_id"]
    assert adapter.stat().st_mtime_ns == mtime
    assert load_json((demo_dir / "report.json").read_text()).verdict is not None


def test_commands_sh_runs_top_to_bottom(demo_dir: Path) -> None:
    """The script the demo hands to the user runs as written: every step exits 0, the gate's
    exit code is shown (the quick demo ends ABANDON, so `--fail-on iterate` gives 1), and the
    report step rebuilds the run the demo just made (its real id, not a placeholder)."""
    script = (demo_dir / "commands.sh").read_text()
    run_id = json.loads((demo_dir / "demo.json").read_text())["run_id"]
    assert "RUN_ID" not in script and f"tunecheck report {run_id} " in script
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    proc = subprocess.run(
        ["bash", "commands.sh"],
        cwd=demo_dir,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "gate exit code: 1" in proc.stdout
    assert (demo_dir / "splits-again" / "tunecheck.lock.json").exists()
    assert run_id in proc.stdout  # the Markdown report of the demo's own run
