"""The run store: cache semantics, runs, migrations, and surviving a killed writer.

``store_url`` (tests/store/conftest.py) runs each test on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tunecheck.errors import TunecheckError
from tunecheck.examples import Example
from tunecheck.models.base import Generation, LoglikelihoodResult
from tunecheck.store import SCHEMA_REVISION, open_store


def test_schema_revision_is_alembic_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import tunecheck.store as store_mod

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_mod.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_REVISION


def _tables(url: str) -> dict[str, set[str]]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_migrations_from_an_empty_database(store_url: str) -> None:
    """Upgrading an empty database gives exactly the tables and columns of the models
    (alembic's own autogenerate comparison finds no difference); down to nothing and up
    again works too."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    import tunecheck.store as store_mod
    from tunecheck.store.schema import Base

    assert _tables(store_url) == {}
    store = open_store(store_url)
    tables = _tables(store_url)
    expected = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
    assert {t: tables[t] for t in expected} == expected
    assert set(tables) == {*expected, "alembic_version"}
    engine = create_engine(store_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        assert compare_metadata(ctx, Base.metadata) == []
        assert ctx.get_current_revision() == SCHEMA_REVISION
    store.close()
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_mod.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(_tables(store_url)) == {"alembic_version"}
    engine.dispose()
    # the next process to open the store migrates it up again (this one caches its engine)
    code = (
        "import sys; from tunecheck.store import open_store; "
        "from tunecheck.models.base import Generation; s = open_store(sys.argv[1]); "
        "s.put_generation('fp', 'k', None, Generation(['ok'])); "
        "print(s.get_generations('fp', ['k'])['k'].text)"
    )
    out = subprocess.run([sys.executable, "-c", code, store_url], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert set(_tables(store_url)) == {*expected, "alembic_version"}


def test_generation_cache_hits_and_errors(store_url: str) -> None:
    store = open_store(store_url)
    store.put_generation(
        "fp", "k1", {"p": 1}, Generation(["a", "b"], prompt_tokens=3, completion_tokens=2)
    )
    store.put_generation("fp", "k2", None, Generation([], error="timeout"))
    hits = store.get_generations("fp", ["k1", "k2", "k3"])
    assert list(hits) == ["k1"]
    assert hits["k1"].texts == ["a", "b"] and hits["k1"].cached and hits["k1"].prompt_tokens == 3
    # another model's cache is separate
    assert store.get_generations("other", ["k1"]) == {}
    # an error never replaces an answer; an answer replaces an error
    store.put_generation("fp", "k1", None, Generation([], error="later failure"))
    store.put_generation("fp", "k2", None, Generation(["fixed"]))
    hits = store.get_generations("fp", ["k1", "k2"])
    assert hits["k1"].texts == ["a", "b"] and hits["k2"].texts == ["fixed"]
    assert store.count_generations("fp") == 2


@pytest.mark.slow
def test_many_keys_are_chunked(store_url: str) -> None:
    store = open_store(store_url)
    items = [(f"k{i}", None, Generation([str(i)])) for i in range(1234)]
    store.put_generations("fp", items)
    hits = store.get_generations("fp", [f"k{i}" for i in range(1300)])
    assert len(hits) == 1234 and hits["k1000"].text == "1000"


def test_loglikelihood_cache(store_url: str) -> None:
    store = open_store(store_url)
    store.put_loglikelihoods(
        "fp",
        [
            ("a", None, LoglikelihoodResult(-1.5, True, 2)),
            ("b", None, LoglikelihoodResult(0.0, error="x")),
        ],
    )
    got = store.get_loglikelihoods("fp", ["a", "b"])
    assert (
        list(got) == ["a"]
        and got["a"].logprob == -1.5
        and got["a"].is_greedy
        and got["a"].n_tokens == 2
    )


def test_runs_contenders_outputs_and_prefix_lookup(store_url: str) -> None:
    store = open_store(store_url)
    run_id = store.create_run(name="demo", spec_hash="abc", overrides={"allow_overlap": True})
    store.add_contender(
        run_id,
        name="base",
        model_ref="hf:x",
        model_fingerprint="f1",
        prompt_fingerprint="p1",
        role="baseline",
    )
    store.add_examples(
        run_id, "task", [Example(id="e1", input="hi", reference={"a": 1}, slices=("s",))]
    )
    store.put_outputs(run_id, "base", "task", [("e1", "f1", "k", Generation(["out"]))])
    store.put_scores(run_id, "base", "task", "exact_match", [("e1", 1.0)])
    store.finish_run(run_id, status="completed", verdict="DEPLOY", result={"verdict": "DEPLOY"})
    run = store.get_run(run_id[:6])
    assert run["status"] == "completed" and run["verdict"] == "DEPLOY"
    assert run["overrides"] == {"allow_overlap": True}
    assert run["contenders"][0]["model_fingerprint"] == "f1"
    assert [o.to_dict() for o in store.outputs(run_id)] == [
        {"contender": "base", "task": "task", "example_id": "e1", "text": "out", "error": None}
    ]
    assert [r["id"] for r in store.list_runs()] == [run_id]
    with pytest.raises(TunecheckError, match="no run"):
        store.get_run("zzzz")


def test_finish_run_stores_a_result_model_as_its_json(store_url: str) -> None:
    """A RunResult (any pydantic model) is stored as model_dump(mode="json"), not by repr."""
    from datetime import UTC, datetime

    from pydantic import BaseModel

    class Result(BaseModel):
        verdict: str
        finished: datetime
        deltas: tuple[float, ...]

    store = open_store(store_url)
    run_id = store.create_run(name="demo", spec_hash="abc")
    result = Result(
        verdict="ITERATE", finished=datetime(2026, 1, 2, 3, 4, tzinfo=UTC), deltas=(0.5,)
    )
    store.finish_run(run_id, status="completed", verdict="ITERATE", result=result)
    assert store.get_run(run_id)["result"] == {
        "verdict": "ITERATE",
        "finished": "2026-01-02T03:04:00Z",
        "deltas": [0.5],
    }


def test_training_points(store_url: str) -> None:
    store = open_store(store_url)
    store.put_training_point("r", 20, "checkpoint-20", {"eval_task/f1": 0.5})
    store.put_training_point("r", 10, None, {"eval_task/f1": 0.25})
    assert [p["step"] for p in store.training_points("r")] == [10, 20]


WRITER = textwrap.dedent(
    """
    import sys
    from tunecheck.store import open_store
    from tunecheck.models.base import Generation
    store = open_store(sys.argv[1])
    for i in range(100000):
        store.put_generation("fp", f"k{i}", {"i": i}, Generation([f"text {i}"]))
        if i == 20:
            print("ready", flush=True)
    """
)


@pytest.mark.slow
def test_store_survives_killed_writer(tmp_path: Path, store_url: str) -> None:
    """A process killed with SIGKILL mid-write leaves a readable store with every committed row."""
    url = store_url
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    store = open_store(url)
    n = store.count_generations("fp")
    assert n > 20
    keys = [f"k{i}" for i in range(n)]
    hits = store.get_generations("fp", keys)
    # committed rows are contiguous from 0: nothing committed was lost, nothing half-written read back
    assert len(hits) == n
    assert all(hits[f"k{i}"].text == f"text {i}" for i in range(n))
    # and the store still accepts writes
    store.put_generation("fp", "after", None, Generation(["ok"]))
    assert store.get_generations("fp", ["after"])["after"].text == "ok"
