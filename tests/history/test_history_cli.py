"""`tunecheck runs`, `compare` and `history` over stored runs (scripted backend, no model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from tunecheck.cli import app
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunecheck.cli import console

    monkeypatch.setattr(console, "width", 250)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _main(*args: str) -> tuple[int, str]:
    """The real entry point in a child process: exit code and stderr (errors print there)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tunecheck", *args], capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stdout + proc.stderr


def _run(spec_path: Path) -> str:
    options = RunOptions(show_progress=False)
    return run(load_spec(spec_path), options=options, spec_path=spec_path).run_id


@pytest.fixture()
def three_runs(project: Path, write_spec) -> tuple[str, list[str]]:
    """tuned (DEPLOY), tuned again (no change), then a worse fine-tune (prompted)."""
    ids = [_run(write_spec("tuned")), _run(write_spec("tuned", name="ft-v2"))]
    ids.append(_run(write_spec("prompted", name="ft-v3")))
    return f"sqlite:///{project / 'runs.db'}", ids


def _scores(store: str, run_id: str) -> dict[str, float]:
    from tunecheck.history import load_result
    from tunecheck.store import open_store

    r = load_result(open_store(store), run_id)
    t = r.tasks[0]
    return {e.id: e.scores[t.candidate][t.primary_metric] for e in t.examples}


@pytest.mark.slow
def test_runs_lists_metrics_and_filters(three_runs) -> None:
    store, ids = three_runs
    code, out = _cli("runs", "--store", store, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ids[::-1]  # newest first
    first = rows[-1]
    assert first["task"] == "tickets" and first["candidate"] == "finetuned"
    assert first["metric"] == "json_exact_match" and first["verdict"] == "DEPLOY"
    scores = _scores(store, ids[0])
    assert first["value"] == pytest.approx(sum(scores.values()) / len(scores))
    assert first["ci_low"] < first["delta"] < first["ci_high"]
    assert first["baseline"] == "base+prompt"
    code, out = _cli("runs", "--store", store, "--candidate", "ft-v3", "--json")
    assert [r["id"] for r in json.loads(out)] == [ids[2]]
    code, out = _cli("runs", "--store", store, "--task", "nope", "--json")
    assert json.loads(out) == []
    code, out = _cli("runs", "--store", store, "--spec", "tickets", "--json")
    assert len(json.loads(out)) == 3
    code, out = _cli("runs", "--store", store, "--spec", "tunecheck.yaml", "--json")
    assert len(json.loads(out)) == 3
    code, out = _cli("runs", "--store", store)
    assert code == 0 and "ft-v3" in out and "DEPLOY" in out and "json_exact_match" in out


@pytest.mark.slow
def test_compare_paired_test_and_flips(three_runs) -> None:
    store, ids = three_runs
    code, out = _cli("compare", ids[0], ids[2], "--store", store, "--json")
    assert code == 0, out
    data = json.loads(out)
    a, b = _scores(store, ids[0]), _scores(store, ids[2])
    worse = sorted(i for i in a if b[i] < a[i])
    better = sorted(i for i in a if b[i] > a[i])
    assert sorted(f["id"] for f in data["flips"]["broken"]) == worse and worse
    assert sorted(f["id"] for f in data["flips"]["fixed"]) == better
    comp = data["comparison"]
    assert comp["test"] == "mcnemar_exact" and comp["n"] == len(a)
    # the reference: an exact binomial test on the discordant pairs
    ref = binomtest(len(better), len(better) + len(worse), 0.5).pvalue
    assert comp["p_value"] == pytest.approx(ref)
    assert comp["delta"] == pytest.approx((sum(b.values()) - sum(a.values())) / len(a))
    assert data["worse"] is True
    code, out = _cli("compare", ids[0], ids[2], "--store", store)
    assert (
        code == 0 and "significantly worse" in out and f"{len(worse)} example(s) worse in B" in out
    )
    # the same candidate twice: identical scores, nothing flips
    code, out = _cli("compare", ids[0][:6], ids[1][:6], "--store", store, "--json")
    same = json.loads(out)
    assert same["flips"]["broken"] == same["flips"]["fixed"] == [] and same["worse"] is False


def test_history_flags_regression_and_plots(three_runs, project: Path) -> None:
    store, ids = three_runs
    png = project / "trend.png"
    code, out = _cli("history", "--store", store, "--json", "--plot", str(png))
    assert code == 0, out
    data = json.loads(out)
    assert [e["run_id"] for e in data["entries"]] == ids  # oldest first
    first, second, third = data["entries"]
    assert first["verdict"] == "DEPLOY" and first["vs_last_deploy"] is None
    assert second["vs_last_deploy"] == ids[0] and second["regression"] is False
    assert second["deploy_delta"] == 0
    # ft-v3 is compared with the last DEPLOY before it (run 2 is DEPLOY too)
    assert third["vs_last_deploy"] == (ids[1] if second["verdict"] == "DEPLOY" else ids[0])
    assert third["regression"] is True and third["deploy_delta"] < 0
    assert third["deploy_ci_high"] < 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and data["plot"] == str(png)
    from PIL import Image

    assert Image.open(png).size[0] >= 600
    code, out = _cli("history", "--store", store, "--task", "tickets")
    assert code == 0 and "WORSE than last DEPLOY" in out and "regression:" in out


@pytest.mark.slow
def test_different_locks_refused(project: Path, write_spec) -> None:
    from tunecheck.data import split_dataset

    store = f"sqlite:///{project / 'runs.db'}"
    a = _run(write_spec("tuned"))
    split_dataset(project / "tickets.jsonl", project / "splits2", seed=9)
    b = _run(write_spec("tuned", folder="splits2", file="other.yaml"))
    code, out = _main("compare", a, b, "--store", store)
    assert code == 2 and "not evaluated on the same locked test set" in out
    code, out = _main("history", "--store", store)
    assert code == 2 and "different locked test sets" in out and "--lock" in out
    lock_b = json.loads(_cli("runs", "--store", store, "--json")[1])[0]["lock_hash"]
    code, out = _cli("history", "--store", store, "--lock", lock_b[:10], "--json")
    assert code == 0 and [e["run_id"] for e in json.loads(out)["entries"]] == [b]
    # both runs' own results are still there
    assert _cli("report", a, "--store", store, "--format", "json")[0] == 0


def test_compare_respects_a_lower_is_better_metric() -> None:
    """Continuous per-example scores where lower is better: B lower is B better."""
    from tunecheck.history import compare_results
    from tunecheck.report import load_json

    text = (Path(__file__).parents[1] / "data" / "history" / "report_v1.json").read_text()
    a, b = load_json(text), load_json(text)
    b.run_id = "b"
    for r, shift in ((a, 0.0), (b, -0.3)):
        t = r.tasks[0]
        for comp in t.comparisons:
            comp.higher_is_better = False
        for i, e in enumerate(t.examples):
            e.scores[t.candidate][t.primary_metric] = 0.5 + 0.01 * i + shift * (i % 3 != 0)
    rc = compare_results(a, b, n_resamples=2000)
    n = len(a.tasks[0].examples)
    assert rc.comparison.test == "permutation_sign_flip" and rc.comparison.n == n
    assert rc.comparison.delta == pytest.approx(-0.3 * sum(i % 3 != 0 for i in range(n)) / n)
    assert rc.worse is False and rc.comparison.improvement()[0] > 0
    assert rc.flips.broken == [] and len(rc.flips.fixed) == sum(i % 3 != 0 for i in range(n))
    assert all(f.change == pytest.approx(0.3) for f in rc.flips.fixed)
    back = compare_results(b, a, n_resamples=2000)
    assert [f.id for f in back.flips.broken] == sorted(f.id for f in rc.flips.fixed)


def test_the_compared_task_s_own_lock_decides() -> None:
    """Multi-task specs: the run-level lock is the first task's; each task's own lock
    (schema 2 data block) is what a paired comparison needs."""
    from tunecheck.history import LockMismatchError, compare_results, task_lock
    from tunecheck.provenance import DataInfo
    from tunecheck.report import load_json

    text = (Path(__file__).parents[1] / "data" / "history" / "report_v1.json").read_text()
    a, b = load_json(text), load_json(text)
    b.run_id = "b"
    assert task_lock(a, "tickets") == a.lock_hash  # schema 1: the run's lock
    for r, own in ((a, "1" * 64), (b, "2" * 64)):
        r.data = [DataInfo(task="tickets", data="t.jsonl", lock_sha256=own, n_examples=1)]
    assert a.lock_hash == b.lock_hash and task_lock(b, "tickets") == "2" * 64
    with pytest.raises(LockMismatchError, match="lock 111111111111 vs 222222222222"):
        compare_results(a, b)
    b.data[0].lock_sha256 = "1" * 64
    assert compare_results(a, b, n_resamples=200).comparison.delta == 0
