"""``kill -9`` during a run against an HTTP server: a resume re-sends only what was in
flight, and the killed run is marked interrupted (issue 19, point 3).

The kill is driven by request count, not time: the fault server itself sends SIGKILL
to the ``tunecheck run`` process when the K-th request arrives (K drawn at random).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

MODELS = Path(__file__).parent.parent / "models"
sys.path.insert(0, str(MODELS))
from openai_servers import FaultServer, canned_answer  # noqa: E402

from tunecheck.store import open_store  # noqa: E402

N = 40  # examples; two contenders on one server: 80 requests
CONCURRENCY = 4

SPEC = """\
seed: 1
bootstrap: 200
guard_examples: 0
contenders:
  - name: base
    model: openai:fault-model@{url}
    prompt:
      system: You are the base prompt.
    options: {{concurrency: {concurrency}, max_retries: 0, timeout: 30}}
  - name: finetuned
    model: openai:fault-model@{url}
    prompt:
      system: You are the other prompt.
    options: {{concurrency: {concurrency}, max_retries: 0, timeout: 30}}
task:
  name: echo
  data: data.jsonl
  metrics: [exact_match]
probes: []
"""


class KillAt:
    """A fault plan: answer everything, but SIGKILL the client when request K arrives."""

    def __init__(self, sig: int = signal.SIGKILL) -> None:
        self.sig = sig
        self.pid: int | None = None
        self.kill_at: int | None = None
        self.arrivals = 0
        self.in_flight_at_kill: int | None = None
        self.server: FaultServer | None = None

    def __call__(self, rid: str, attempt: int) -> str:
        self.arrivals += 1
        if self.pid is not None and self.arrivals == self.kill_at:
            assert self.server is not None
            # the server's own count, this request included
            self.in_flight_at_kill = self.server.in_flight
            os.kill(self.pid, self.sig)
            self.pid = None
            return "hang"
        return "ok"


def _stored(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM generations WHERE error IS NULL").fetchone()[0]
    finally:
        con.close()


def _lost(server: FaultServer, db: Path) -> int:
    """Answers the server sent that are not in the store."""
    answered = sum(1 for c in server.body_successes.values() if c)
    return answered - (_stored(db) if db.exists() else 0)


def _resent(server: FaultServer, before: tuple[dict[str, int], dict[str, int]]) -> list[str]:
    """Requests asked again since ``before`` although the server had answered them by then."""
    attempts, successes = before
    return [b for b, c in successes.items() if c and server.body_attempts[b] > attempts[b]]


def _start(project: Path, store: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tunecheck", "run", str(project / "tunecheck.yaml")]
    cmd += ["--store", store, "--quiet", "--no-probes", "--json"]
    return subprocess.Popen(
        cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    rows = [{"id": f"e{i:03d}", "input": f"id=e{i:03d}", "reference": "x"} for i in range(N)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


@pytest.mark.slow
def test_kill_9_at_random_request_counts_resends_only_what_was_in_flight(project: Path) -> None:
    db = project / "store.db"
    store = f"sqlite:///{db}"
    plan = KillAt()
    kill_points = sorted(random.Random(19).sample(range(6, 2 * N - 6), 3))
    with FaultServer(plan, delay=0.002) as server:
        plan.server = server
        (project / "tunecheck.yaml").write_text(
            SPEC.format(url=server.url, concurrency=CONCURRENCY)
        )
        killed_runs = 0
        for k in kill_points:
            lost_before = _lost(server, db)
            attempts_before = (+server.body_attempts, +server.body_successes)
            plan.arrivals, plan.kill_at = 0, k
            proc = _start(project, store)
            plan.pid = proc.pid
            proc.communicate(timeout=300)
            if proc.returncode != -signal.SIGKILL:
                # finished before the K-th request (everything left was already stored)
                assert proc.returncode == 0
                continue
            killed_runs += 1
            # only answers of requests in flight at the kill can be missing from the store
            assert plan.in_flight_at_kill is not None and plan.in_flight_at_kill <= CONCURRENCY
            assert _lost(server, db) - lost_before <= CONCURRENCY
            # and nothing the store held was asked for again
            assert len(_resent(server, attempts_before)) <= lost_before

        # the resume completes and re-sends, of everything already answered, only the lost
        lost = _lost(server, db)
        assert lost <= CONCURRENCY * killed_runs
        attempts_before = (+server.body_attempts, +server.body_successes)
        stored = _stored(db)
        plan.kill_at = None
        proc = _start(project, store)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        assert len(_resent(server, attempts_before)) == lost
        # every request still missing was asked exactly once (no retries were needed)
        new_attempts = sum(server.body_attempts.values()) - sum(attempts_before[0].values())
        assert new_attempts == 2 * N - stored
    assert killed_runs >= 2

    result = json.loads(out)
    outputs = {e["id"]: e["outputs"] for e in result["tasks"][0]["examples"]}
    assert outputs == {
        f"e{i:03d}": {
            "base": canned_answer(f"e{i:03d}", 1),
            "finetuned": canned_answer(f"e{i:03d}", 1),
        }
        for i in range(N)
    }
    # the killed runs were marked interrupted when the next run opened the store
    runs = open_store(store).list_runs()
    statuses = sorted(r["status"] for r in runs)
    finished = 1 + len(kill_points) - killed_runs
    assert statuses == ["completed"] * finished + ["interrupted"] * killed_runs
    for r in runs:
        if r["status"] == "interrupted":
            assert "ended without finishing" in open_store(store).get_run(r["id"])["error"]


@pytest.mark.slow
def test_ctrl_c_stores_every_answer_received_and_says_so(project: Path) -> None:
    db = project / "store.db"
    store = f"sqlite:///{db}"
    plan = KillAt(signal.SIGINT)
    with FaultServer(plan, delay=0.002) as server:
        plan.server = server
        (project / "tunecheck.yaml").write_text(
            SPEC.format(url=server.url, concurrency=CONCURRENCY)
        )
        plan.kill_at = 30
        proc = _start(project, store)
        plan.pid = proc.pid
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err[-2000:]
        assert "interrupted; every answer received so far is stored" in err
        assert "Traceback" not in err
        # true: only answers still in flight (sent by the server, not yet read) are missing
        lost = _lost(server, db)
        assert lost <= CONCURRENCY
        before = (+server.body_attempts, +server.body_successes)
        plan.kill_at = None
        resumed = _start(project, store)
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err[-2000:]
        assert len(_resent(server, before)) == lost
    runs = {r["status"] for r in open_store(store).list_runs()}
    assert runs == {"interrupted", "completed"}
