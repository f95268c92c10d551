"""One store, several processes: migration, idempotent cache writes, dead runs (issue 19).

Every test runs on SQLite and on a real PostgreSQL server started by the test
(skipped where no PostgreSQL binaries or psycopg driver exist).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pg_server import PostgresServer
from sqlalchemy import select, update

from tunecheck.models.base import Generation, LoglikelihoodResult
from tunecheck.store import open_store
from tunecheck.store.schema import GenerationRow, LoglikelihoodRow, RunRow


@pytest.fixture(scope="module")
def postgres():
    why = PostgresServer.missing()
    if why:
        pytest.skip(why)
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'store.db'}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t{uuid.uuid4().hex[:10]}")


@pytest.mark.parametrize("generic", [False, True], ids=["dialect-insert", "savepoint-fallback"])
def test_cache_writes_are_idempotent_and_keep_answers(
    url: str, generic: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if generic:  # what a database without INSERT ... ON CONFLICT gets
        import tunecheck.store.upsert as upsert

        monkeypatch.setattr(upsert, "_dialect_insert", lambda session: None)
    store = open_store(url)
    store.put_generations(
        "fp",
        [
            ("a", {"q": 1}, Generation(["first"], prompt_tokens=3)),
            ("a", {"q": 1}, Generation([], error="same key, later in the batch")),
            ("b", None, Generation([], error="HTTP 500")),
        ],
    )
    # another process's copy of the same answer, an error and a fix for the error
    store.put_generations(
        "fp",
        [
            ("a", {"q": 1}, Generation(["second copy"])),
            ("b", None, Generation(["fixed"], completion_tokens=2)),
            ("c", None, Generation([], error="timeout")),
        ],
    )
    store.put_generation("fp", "a", None, Generation([], error="later failure"))
    store.put_generation("fp", "c", None, Generation([], error="timeout again"))
    hits = store.get_generations("fp", ["a", "b", "c"])
    assert {k: g.texts for k, g in hits.items()} == {"a": ["first"], "b": ["fixed"]}
    assert hits["a"].prompt_tokens == 3 and hits["b"].completion_tokens == 2
    with store._session() as s:
        rows = {r.request_key: r for r in s.scalars(select(GenerationRow))}
    assert len(rows) == 3 and rows["c"].error == "timeout again"
    assert rows["a"].request == {"q": 1}

    store.put_loglikelihoods("fp", [("x", None, LoglikelihoodResult(-1.0, True, 1))])
    store.put_loglikelihoods(
        "fp",
        [("x", None, LoglikelihoodResult(-9.0)), ("y", None, LoglikelihoodResult(-2.0, False, 2))],
    )
    got = store.get_loglikelihoods("fp", ["x", "y"])
    assert (got["x"].logprob, got["y"].logprob) == (-1.0, -2.0)
    with store._session() as s:
        assert len(list(s.scalars(select(LoglikelihoodRow)))) == 2
    store.close()


WRITER = """
import os, sys, time
from tunecheck.models.base import Generation, LoglikelihoodResult
from tunecheck.store import open_store
url, go, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
while not os.path.exists(go):
    time.sleep(0.002)
store = open_store(url)
for start in range(0, 100, 10):
    # the same 200 keys in every process, each starting somewhere else, in another order
    keys = [(offset + k * 7) % 200 for k in range(start, start + 10)]
    store.put_generations("fp", [(f"k{k}", {"k": k}, Generation([f"t{k}"])) for k in keys])
    store.put_loglikelihoods(
        "fp", [(f"k{k}", None, LoglikelihoodResult(-float(k), True, 1)) for k in keys]
    )
print("done")
"""


@pytest.mark.slow
def test_four_processes_migrate_and_write_the_same_keys_at_once(url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    for round_ in ("new store", "existing store"):
        go = tmp_path / f"go-{round_.replace(' ', '-')}"
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), url, str(go), str(offset)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for offset in (0, 50, 100, 150)
        ]
        time.sleep(0.5)  # interpreters started; the barrier releases them together
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "done", (round_, err[-2000:])
    store = open_store(url)
    hits = store.get_generations("fp", [f"k{k}" for k in range(200)])
    assert {k: g.text for k, g in hits.items()} == {f"k{k}": f"t{k}" for k in range(200)}
    assert store.count_generations("fp") == 200
    assert len(store.get_loglikelihoods("fp", [f"k{k}" for k in range(200)])) == 200
    store.close()
    if url.startswith("sqlite"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        con.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_whose_process_died_are_marked_interrupted(url: str) -> None:
    store = open_store(url)
    alive = store.create_run(name="this process", spec_hash="h")
    killed = store.create_run(name="killed", spec_hash="h")
    reused = store.create_run(name="pid reused", spec_hash="h")
    far_fresh = store.create_run(name="other host, recent heartbeat", spec_hash="h")
    far_stale = store.create_run(name="other host, silent", spec_hash="h")
    done = store.create_run(name="finished", spec_hash="h")
    store.finish_run(done, status="completed")
    from datetime import timedelta

    from tunecheck.store.schema import utcnow

    with store._session.begin() as s:
        s.execute(update(RunRow).where(RunRow.id == killed).values(pid=_dead_pid()))
        # our own pid, but "started" an hour earlier: the pid was recycled
        row = s.get(RunRow, reused)
        s.execute(
            update(RunRow).where(RunRow.id == reused).values(pid_started=row.pid_started - 3600)
        )
        s.execute(update(RunRow).where(RunRow.id == far_fresh).values(host="elsewhere", pid=1))
        s.execute(
            update(RunRow)
            .where(RunRow.id == far_stale)
            .values(host="elsewhere", pid=1, heartbeat_at=utcnow() - timedelta(hours=1))
        )
    marked = store.mark_dead_runs()
    assert sorted(marked) == sorted([killed, reused, far_stale])
    status = {r["id"]: r["status"] for r in store.list_runs()}
    assert status == {
        alive: "running",
        killed: "interrupted",
        reused: "interrupted",
        far_fresh: "running",
        far_stale: "interrupted",
        done: "completed",
    }
    assert "ended without finishing" in store.get_run(killed)["error"]
    assert "on elsewhere" in store.get_run(far_stale)["error"]
    # a heartbeat keeps a remote run alive
    store.heartbeat(far_fresh)
    assert store.mark_dead_runs() == []
    store.close()


@pytest.mark.slow
def test_a_killed_run_is_interrupted_when_the_store_is_next_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    code = (
        "import sys, os, signal; from tunecheck.store import open_store; "
        "s = open_store(sys.argv[1]); print(s.create_run(name='x', spec_hash='h'), flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60
    )
    run_id = proc.stdout.strip()
    assert proc.returncode == -9 and run_id
    env = dict(os.environ)
    listed = subprocess.run(
        [sys.executable, "-m", "tunecheck", "runs", "--store", url, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert listed.returncode == 0, listed.stderr
    assert '"status": "interrupted"' in listed.stdout and run_id in listed.stdout
