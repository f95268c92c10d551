"""The judge inside ``tunecheck run``, against a real local OpenAI-compatible server process.

The server (FastAPI + uvicorn, started by the tests) serves the two contenders and
scripted judges: fair, position-biased, verbosity-biased, malformed, repairable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from judge_server import JudgeServer

from tunecheck.errors import SpecError
from tunecheck.judge.stage import JudgeError
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec, parse_spec
from tunecheck.store import open_store

N = 24


def _spec(server: JudgeServer, judge: str, *, modes: str = "both", extra: str = "") -> str:
    rubric = """
    rubric:
      criteria:
        - name: correct
          description: the answer is right
        - name: polite
          description: the answer is polite
          scale: pass_fail"""
    pairwise = """
    pairwise:
      against: all"""
    blocks = {"both": rubric + pairwise, "rubric": rubric, "pairwise": pairwise}[modes]
    return f"""\
seed: 3
bootstrap: 500
guard_examples: 2
probes: []
contenders:
  - name: base
    model: {server.ref("base")}
  - name: tuned
    model: {server.ref("tuned")}
task:
  name: qa
  data: data.jsonl
  metrics: [chrf]
  judge:
    model: {server.ref(judge)}
    batch_size: 8{blocks}{extra}
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    rows = [
        {"id": f"q{i:02d}", "input": f"question {i}", "reference": f"GOOD answer to question {i}"}
        for i in range(N)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


@pytest.fixture()
def server():
    with JudgeServer() as s:
        yield s


def _run(project: Path, text: str, **kw):
    (project / "tunecheck.yaml").write_text(text)
    spec = load_spec(project / "tunecheck.yaml")
    opts = RunOptions(store_url=f"sqlite:///{project / 'store.db'}", show_progress=False, **kw)
    return run(spec, options=opts)


def test_fair_judge_rubric_and_pairwise_then_zero_call_rerun(project: Path, server) -> None:
    out = _run(project, _spec(server, "judge-fair"))
    task = out.result.tasks[0]
    assert task.metrics == ["chrf", "judge_score", "judge_pass_rate", "judge_win_rate"]
    j = task.judge
    assert j is not None
    # rubric: tuned says GOOD everywhere -> 5 and pass; base -> 2 and fail
    assert j.rubric.means["tuned"] == {"correct": 5.0, "polite": 1.0}
    assert j.rubric.means["base"] == {"correct": 2.0, "polite": 0.0}
    assert task.contender("tuned").metrics["judge_score"] == pytest.approx(1.0)
    assert task.contender("base").metrics["judge_score"] == pytest.approx((0.25 + 0) / 2)
    assert task.contender("tuned").metrics["judge_pass_rate"] == 1.0
    # pairwise, both orders: every verdict consistent, the candidate wins all
    pw = j.pairwise_vs("base")
    assert (pw.n, pw.wins, pw.losses, pw.ties, pw.inconsistent) == (N, N, 0, 0, 0)
    assert pw.win_rate == 1.0 and pw.position_consistency == 1.0
    assert pw.first_position_rate == 0.5  # the winner was A in one order and B in the other
    from scipy.stats import binomtest

    assert pw.p_value == pytest.approx(binomtest(N, N, 0.5).pvalue)
    comp = task.comparison("judge_win_rate")
    assert comp.test == "sign_test" and comp.delta == pytest.approx(1.0)
    # judge calls: 2 contenders x N rubric + 2 orders x N pairwise, none cached yet
    assert j.cost.calls == 4 * N == server.judge_calls()
    assert j.cost.cached == 0 and j.cost.tokens_in > 0 and j.cost.tokens_out > 0
    assert out.result.meta["judge"]["calls"] == 4 * N
    # per-example judge scores are in the outcomes and in the store
    ex = task.examples[0]
    assert ex.scores["tuned"]["judge_win_rate"] == 1.0
    assert ex.scores["base"]["judge_win_rate"] == 0.0
    assert out.result.verdict.decision == "DEPLOY"

    # a re-run answers every judgement from the cache: zero judge calls
    before = server.judge_calls()
    again = _run(project, _spec(server, "judge-fair"))
    j2 = again.result.tasks[0].judge
    assert server.judge_calls() == before
    assert j2.cost.calls == 0 and j2.cost.cached == 4 * N
    assert j2.cost.cached_tokens_in == j.cost.tokens_in
    assert again.result.tasks[0].judge.pairwise == j.pairwise
