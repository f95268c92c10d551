"""`shadow report --judge`: the run's pairwise judge on logged pairs, cached, both orders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "judge"))
from judge_server import JudgeServer

from tunecheck.shadow.judging import shadow_judge
from tunecheck.shadow.report import build_report
from tunecheck.store import open_store


def _rows(n: int) -> list[dict]:
    """Logged pairs with every column of the shadow log (as load_requests returns them)."""
    import hashlib

    from tunecheck.store.schema import ShadowRequestRow

    blank = {c.name: None for c in ShadowRequestRow.__table__.columns}
    rows = []
    for i in range(n):
        # the candidate's answer carries the judge's GOOD marker on 3 of every 4 requests
        cand = f"GOOD answer {i}" if i % 4 else f"plain answer {i}"
        rows.append(
            blank
            | {
                "prod_sha256": hashlib.sha256(f"answer {i}".encode()).hexdigest(),
                "cand_sha256": hashlib.sha256(cand.encode()).hexdigest(),
                "id": f"r{i:03d}",
                "mirror": "done",
                "request": {"model": "m", "messages": [{"role": "user", "content": f"q {i}"}]},
                "prod_status": 200,
                "prod_error": None,
                "prod_text": f"answer {i}",
                "cand_status": 200,
                "cand_error": None,
                "cand_text": cand,
                "prod_latency_ms": 10.0,
                "cand_latency_ms": 12.0,
                "prod_completion_tokens": 2,
                "cand_completion_tokens": 3,
                "prod_chars": 8,
                "cand_chars": 12,
            }
        )
    return rows


@pytest.fixture()
def server():
    with JudgeServer() as s:
        yield s


def test_shadow_pairs_judged_both_orders_and_cached(tmp_path: Path, server) -> None:
    rows = _rows(24)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    judge = shadow_judge(rows, server.ref("judge-fair"), store)
    assert judge.cost.calls == 2 * 24 == server.judge_calls()  # both orders, each pair
    j = build_report([], rows, judge=judge).judge
    # 18 pairs: only the candidate says GOOD -> win; 6: neither -> tie
    assert (j["wins"], j["losses"], j["ties"], j["judge_errors"]) == (18, 0, 6, 0)
    assert j["win_rate"] == pytest.approx((18 + 0.5 * 6) / 24)
    assert j["sign_test_p"] == pytest.approx(binomtest(18, 18).pvalue)
    # a second report asks the cache, not the judge
    again = shadow_judge(rows, server.ref("judge-fair"), store)
    assert server.judge_calls() == 48 and again.cost.calls == 0 and again.cost.cached == 48
    # a judge that always names the first response: every verdict flips with the order
    biased = build_report([], rows, judge=shadow_judge(rows, server.ref("judge-first"), store))
    assert biased.judge["ties"] == 24 and biased.judge["wins"] == 0
