"""Every finished answer of an HTTP backend is stored before the next is awaited (issue 19,
point 3), for generations and for log-likelihood scores (multiple-choice probes) alike.

With one request in flight the server sees request ``k`` only after answer ``k - 1`` has
come back; at that moment the store must already hold every earlier answer. The server
counts the stored rows itself as each request arrives (events, not time), so a cache
that commits in blocks (as it did before: 64 answers a block) shows 0, 0, 0... here.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from openai_servers import FaultServer

from tunecheck.models import GenerationParams, GenerationRequest
from tunecheck.models.base import LoglikelihoodRequest
from tunecheck.models.cache import CachedModel
from tunecheck.models.openai_compat import OpenAIModel
from tunecheck.store import open_store

FAST = {"backoff_base": 0.001, "backoff_max": 0.002}
N = 6


class CountAtArrival:
    """A fault plan that answers everything and records the rows stored at each arrival."""

    def __init__(self, db: Path, table: str) -> None:
        self.db, self.table = db, table
        self.seen: list[int] = []

    def __call__(self, rid: str, attempt: int) -> str:
        con = sqlite3.connect(self.db)
        try:
            self.seen.append(con.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])
        finally:
            con.close()
        return "ok"


def test_generations_are_committed_one_by_one_as_they_arrive(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(f"sqlite:///{db}")
    plan = CountAtArrival(db, "generations")
    params = GenerationParams()
    requests = [GenerationRequest(prompt=f"id={i}", params=params) for i in range(N)]
    with FaultServer(plan) as server:
        model = CachedModel(OpenAIModel("fault-model", server.url, concurrency=1, **FAST), store)
        out = model.generate(requests)
    assert all(g.ok for g in out) and model.calls == N
    assert plan.seen == list(range(N))
    assert store.count_generations() == N


def test_loglikelihood_scores_are_committed_one_by_one_as_they_arrive(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(f"sqlite:///{db}")
    plan = CountAtArrival(db, "loglikelihoods")
    requests = [LoglikelihoodRequest(f"id={i} The sky is", " blue") for i in range(N)]
    with FaultServer(plan) as server:
        inner = OpenAIModel("fault-model", server.url, concurrency=1, **FAST)
        model = CachedModel(inner, store)
        out = model.loglikelihood(requests)
        assert all(r.error is None for r in out) and model.calls == N
        assert plan.seen == list(range(N))
        # a second pass is answered by the store alone, with the same scores
        again = CachedModel(inner, store)
        assert [r.logprob for r in again.loglikelihood(requests)] == [r.logprob for r in out]
        assert again.calls == 0
