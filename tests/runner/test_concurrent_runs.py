"""Several ``tunecheck run`` processes on one store at once (issue 19, point 1).

Four processes start together (a file barrier, not a timer) on overlapping specs:
first on a store that does not exist yet (everyone migrates it at once), then again
on the existing store with more examples (everyone writes the same new cache keys
at once, a second time). Every process must finish, every request must be stored once, and the
SQLite file must pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import scripted_backend  # noqa: F401 - registers the `scripted` backend

from tunecheck.data import split_dataset
from tunecheck.pipeline.tasks import load_task
from tunecheck.requests import contender_requests
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec

HERE = Path(__file__).parent
CATEGORIES = ["billing", "shipping", "technical", "account"]

SPEC_A = """\
seed: 3
bootstrap: 200
guard_examples: 0
contenders:
  - name: base
    model: scripted:zero
  - name: base+prompt
    model: scripted:prompted
    prompt:
      system: Answer with JSON.
  - name: finetuned
    model: scripted:tuned
task:
  name: tickets
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  metrics: [json_exact_match]
probes: []
"""
# shares two contenders (same model and prompt: the same cache keys) with spec A
SPEC_B = SPEC_A.replace("  - name: base\n    model: scripted:zero\n", "")

DRIVER = """
import json, os, sys, time
sys.path.insert(0, {here!r})
import scripted_backend
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec
go = sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.005)
out = run(
    load_spec(sys.argv[1]),
    options=RunOptions(store_url=sys.argv[2], show_progress=False, limit=int(sys.argv[4])),
)
print(json.dumps({{"run": out.run_id, "calls": out.model_calls}}))
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [
        {
            "id": f"t{i:04d}",
            "input": f"ticket number {i} about {CATEGORIES[i % 4]}",
            "reference": json.dumps({"category": CATEGORIES[i % 4]}),
        }
        for i in range(400)
    ]
    data = tmp_path / "tickets.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(data, tmp_path / "splits", seed=5)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(answers))
    (tmp_path / "a.yaml").write_text(SPEC_A)
    (tmp_path / "b.yaml").write_text(SPEC_B)
    (tmp_path / "driver.py").write_text(DRIVER.format(here=str(HERE)))
    return tmp_path


def _round(project: Path, store: str, limit: int, tag: str) -> list[dict]:
    go = project / f"go-{tag}"
    env = dict(os.environ, TUNECHECK_SCRIPT_DELAY="0.001")
    driver = str(project / "driver.py")
    procs = [
        subprocess.Popen(
            [sys.executable, driver, str(project / spec), store, str(go), str(limit)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in ("a.yaml", "b.yaml", "a.yaml", "b.yaml")
    ]
    time.sleep(1.0)  # let every interpreter reach the barrier (a later start is only less racy)
    go.touch()
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


def _requests(project: Path, limit: int) -> set[tuple[str, str]]:
    """Every distinct (model, request key) the two specs need on the first ``limit`` examples."""
    keys = set()
    for name in ("a.yaml", "b.yaml"):
        spec = load_spec(project / name)
        examples = load_task(spec.tasks[0], limit=limit).examples
        for c in spec.contenders:
            keys |= {(c.model, r.cache_key()) for r in contender_requests(c, examples, spec.seed)}
    return keys


@pytest.mark.slow
def test_four_runs_on_one_store_all_finish_and_store_each_answer_once(project: Path) -> None:
    db = project / "common" / "store.db"
    store = f"sqlite:///{db}"
    reference = {
        name: run(
            load_spec(project / name),
            options=RunOptions(
                store_url=f"sqlite:///{project / f'ref-{name}.db'}", show_progress=False, limit=60
            ),
        )
        for name in ("a.yaml", "b.yaml")
    }
    for tag, limit in (("new", 30), ("existing", 60)):
        outs = _round(project, store, limit, tag)
        con = sqlite3.connect(db)
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            rows = con.execute("SELECT model_fp, request_key, error FROM generations").fetchall()
            statuses = dict(con.execute("SELECT id, status FROM runs").fetchall())
        finally:
            con.close()
        # every run completed; every request the specs need is stored exactly once, as an answer
        assert all(statuses[o["run"]] == "completed" for o in outs)
        assert (
            len(rows) == len({(fp, key) for fp, key, _ in rows}) == len(_requests(project, limit))
        )
        assert all(error is None for *_, error in rows)
        # each process generated at most what it needed (the rest came from the others)
        assert all(o["calls"] <= 3 * limit for o in outs)
        if tag == "existing":  # the first 30 examples were answered in the first round
            assert all(o["calls"] <= 3 * (limit - 30) for o in outs)

    # and the results equal a run alone on its own store
    from tunecheck.store import open_store

    shared = open_store(store)
    for o, name in zip(outs, ("a.yaml", "b.yaml", "a.yaml", "b.yaml"), strict=True):
        result = shared.get_run(o["run"])["result"]
        alone = reference[name].result
        assert result["verdict"]["decision"] == alone.verdict.decision
        got = {
            (e["id"], json.dumps(e["outputs"], sort_keys=True))
            for e in result["tasks"][0]["examples"]
        }
        want = {(e.id, json.dumps(e.outputs, sort_keys=True)) for e in alone.tasks[0].examples}
        assert got == want
