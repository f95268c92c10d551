"""Runs, history and compare read the same from PostgreSQL as from SQLite (real server,
skipped with the reason where no PostgreSQL binaries or psycopg driver exist)."""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from pg_server import PostgresServer


@pytest.fixture(scope="module")
def pg_url():
    why = PostgresServer.missing()
    if why:
        pytest.skip(f"PostgreSQL history test skipped: {why}")
    server = PostgresServer()
    server.start()
    yield server.create_database(f"h{uuid.uuid4().hex[:10]}")
    server.stop()


def _store_run(store, acc: float, seed: int, n: int = 300) -> str:
    from tunecheck.examples import Example
    from tunecheck.pipeline.scoring import evaluate_task
    from tunecheck.results import RunResult
    from tunecheck.spec import ParserSpec, Thresholds
    from tunecheck.verdict import decide

    rng = random.Random(seed)
    examples = [Example(id=f"e{i:04d}", input=f"q{i}", reference=f"a{i}") for i in range(n)]
    outs = {
        "finetuned": [f"a{i}" if rng.random() < acc else "x" for i in range(n)],
        "base": [f"a{i}" if rng.random() < 0.4 else "x" for i in range(n)],
    }
    task = evaluate_task(
        "qa", examples, outs, metrics=["exact_match"], primary_metric="exact_match",
        parser=ParserSpec(), candidate="finetuned", baselines=["base"], n_resamples=500,
    )  # fmt: skip
    run_id = store.create_run(name="qa", spec_hash="0" * 64, lock_hash="c" * 64)
    result = RunResult(run_id=run_id, lock_hash="c" * 64, candidate="finetuned", tasks=[task],
                       verdict=decide([task], [], Thresholds()))  # fmt: skip
    store.finish_run(run_id, status="completed", verdict=result.verdict.decision,
                     result=result.model_dump(mode="json"))  # fmt: skip
    return run_id


@pytest.mark.slow
def test_history_on_postgres_equals_sqlite(pg_url: str, tmp_path: Path) -> None:
    from tunecheck.history import compare_runs, history, run_summaries
    from tunecheck.store import open_store

    stores = [open_store(pg_url), open_store(f"sqlite:///{tmp_path / 'h.db'}")]
    ids = [[_store_run(s, acc, i) for i, acc in enumerate((0.8, 0.82, 0.5))] for s in stores]
    reports = [history(s, task="qa", n_resamples=1000) for s in stores]
    pg, lite = (
        [e.model_dump(exclude={"run_id", "created_at", "vs_last_deploy"}) for e in r.entries]
        for r in reports
    )
    assert pg == lite
    assert [e.regression for e in reports[0].entries] == [False, False, True]
    assert [r.id for r in run_summaries(stores[0])] == ids[0][::-1]
    a = compare_runs(stores[0], ids[0][0], ids[0][2], n_resamples=1000)
    b = compare_runs(stores[1], ids[1][0], ids[1][2], n_resamples=1000)
    assert a.comparison.p_value == b.comparison.p_value
    assert [f.id for f in a.flips.broken] == [f.id for f in b.flips.broken]
