"""``tunecheck shadow report`` and ``export`` over pairs logged by a real proxy run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from shadow_procs import chat_body, env, rows
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "judge"))
from judge_server import JudgeServer

from tunecheck.cli import app
from tunecheck.shadow.log import load_requests
from tunecheck.shadow.report import build_report


def _tunecheck(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tunecheck", *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )


@pytest.fixture()
def logged(stubs, proxies, tmp_path: Path) -> Path:
    """20 requests (2 of them repeats) mirrored to a candidate that answers differently
    and fails every 4th request."""
    prod = stubs("ok", 0.0, "stub")
    cand = stubs("ok", 0.0, "stub", "--prefix", "the candidate says: ", "--fail-every", "4")
    proxy = proxies(prod.url, cand.url)
    questions = [f"question number {i}" for i in range(18)] + ["question number 0"] * 2
    with httpx.Client(timeout=30) as client:
        for i, q in enumerate(questions):
            r = client.post(proxy.url + "/chat/completions", json=chat_body(q, stream=i % 5 == 0))
            assert r.status_code == 200
    proxy.stop()
    return tmp_path / "shadow.db"


@pytest.mark.slow
def test_report_numbers_match_the_rows(logged: Path) -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    sessions, log = load_requests(str(logged))
    assert len(log) == 20 and len(sessions) == 1
    calls = []

    def judge(request, production, candidate):  # prefers the longer answer; skips one
        calls.append(request)
        if "question number 3" in json.dumps(request):
            return None
        return 1.0 if len(candidate) > len(production) else 0.0

    rep = build_report(sessions, log, judge=judge, top=3)
    raw = rows(logged)
    assert rep.pairs == 20 and rep.counts["done"] == 20
    cand_fail = np.array([r["cand_status"] != 200 for r in raw])
    assert cand_fail.sum() == 5  # every 4th
    assert rep.errors.candidate == pytest.approx(0.25) and rep.errors.production == 0
    # 2x2 of (production ok, candidate ok): 15 both ok, 5 only production ok
    ref = mcnemar([[15, 5], [0, 0]], exact=True).pvalue
    assert rep.errors.p_value == pytest.approx(ref)
    ok = [r for r in raw if r["cand_status"] == 200]
    diffs = [r["cand_latency_ms"] - r["prod_latency_ms"] for r in ok]
    assert rep.latency_ms.n == 15 and rep.latency_ms.difference == pytest.approx(np.mean(diffs))
    assert rep.latency_ms.ci_low <= rep.latency_ms.difference <= rep.latency_ms.ci_high
    tok = [r["cand_completion_tokens"] - r["prod_completion_tokens"] for r in ok]
    assert rep.length.difference == pytest.approx(np.mean(tok)) == pytest.approx(2.0)
    assert rep.identical == 0.0 and 0 < rep.similarity_chrf < 1
    words = next(d for d in rep.reference_free if d.name == "words")
    assert words.difference == pytest.approx(2.0)
    assert len(rep.disagreements) == 3
    assert all(d.candidate.startswith("the candidate says: ") for d in rep.disagreements)
    # the plugged-in judge saw every successful pair; one undecided is not a win or loss
    assert len(calls) == 15
    skipped = sum("question number 3" in json.dumps(r["request"]) for r in ok)
    assert rep.judge["judge_errors"] == skipped and rep.judge["wins"] == 15 - skipped
    assert rep.judge["win_rate"] == 1.0

    # the command line, in this process (the entry point's exit codes are tested below)
    r = CliRunner().invoke(app, ["shadow", "report", "--store", str(logged)])
    assert r.exit_code == 0, r.output
    assert "where they disagree most" in r.output and "McNemar p" in r.output
    # the run's pairwise LLM judge (a scripted judge server that prefers the longer
    # answer): every successful pair judged in both orders, the candidate wins each
    with JudgeServer() as server:
        args = ["shadow", "report", "--store", str(logged), "--json"]
        r = CliRunner().invoke(app, [*args, "--judge", server.ref("judge-longer")])
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["pairs"] == 20
        j = out["judge"]
        assert (j["wins"], j["losses"], j["ties"], j["judge_errors"]) == (15, 0, 0, 0)
        assert j["cost"]["calls"] == server.judge_calls() > 0
        assert j["cost"]["calls"] + j["cost"]["cached"] == 2 * 15


@pytest.mark.slow
def test_export_is_a_dataset_split_accepts(logged: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    r = _tunecheck("shadow", "export", "--store", str(logged), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["rows"] == 18 and info["skipped_repeats"] == 2
    data = [json.loads(line) for line in (out / "shadow.jsonl").read_text().splitlines()]
    assert {d["reference"] for d in data} == {f"echo: question number {i}" for i in range(18)}
    assert all(d["input"][-1]["role"] == "user" for d in data)
    splits = out / "splits"
    r = _tunecheck("split", str(out / "shadow.jsonl"), "--out", str(splits), "--ratios", "0.5,0.5")
    assert r.returncode == 0, r.stderr
    assert (splits / "tunecheck.lock.json").exists()
    test_rows = (splits / "test.jsonl").read_text().splitlines()
    train_rows = (splits / "train.jsonl").read_text().splitlines()
    assert len(test_rows) + len(train_rows) == 18
    r = _tunecheck("verify", str(splits))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_export_without_content_is_refused(stubs, proxies, tmp_path: Path) -> None:
    prod = stubs("ok")
    proxy = proxies(prod.url, prod.url, "--no-content")
    httpx.post(proxy.url + "/chat/completions", json=chat_body("hello"), timeout=30)
    proxy.stop()
    r = _tunecheck(
        "shadow", "export", "--store", str(tmp_path / "shadow.db"), "--out", str(tmp_path / "x")
    )
    assert r.returncode == 2 and "nothing to export" in r.stderr and "--no-content" in r.stderr
    r = _tunecheck("shadow", "report", "--store", str(tmp_path / "empty.db"))
    assert r.returncode == 2 and "no shadow sessions" in r.stderr
