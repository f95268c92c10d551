"""``tunecheck run`` end to end against a faulty OpenAI-compatible server (issue 19):
empty answers make a run INCOMPLETE, a key quoted in answers never reaches the store
or the reports, a server that never answers stops the run with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "models"))
from openai_servers import FaultServer

KEY_ENV = "TUNECHECK_TEST_RUN_KEY"
KEY = "sk-run-faults-0123456789abcdef"
N = 40

SPEC = """\
seed: 0
bootstrap: 200
guard_examples: 0
contenders:
  - name: base
    model: openai:fault-model@{url}
    prompt:
      system: Base prompt.
    options: {options}
  - name: finetuned
    model: openai:fault-model@{url}
    prompt:
      system: Tuned prompt.
    options: {options}
task:
  name: echo
  data: data.jsonl
  metrics: [exact_match]
probes: []
"""
NULL = '{"choices": [{"index": 0, "message": {"role": "assistant", "content": null}}]}'


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    # the reference is the answer the fault server gives, so contenders score well
    rows = [
        {"id": f"e{i:03d}", "input": f"id=e{i:03d}", "reference": f"answer-e{i:03d}"}
        for i in range(N)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def _run(project: Path, url: str, options: dict, *args: str) -> subprocess.CompletedProcess:
    (project / "tunecheck.yaml").write_text(SPEC.format(url=url, options=json.dumps(options)))
    cmd = [sys.executable, "-m", "tunecheck", "run", "tunecheck.yaml", "--store", "store.db"]
    env = dict(os.environ, **{KEY_ENV: KEY})
    return subprocess.run(
        [*cmd, "--quiet", "--no-probes", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _stored_bytes(project: Path) -> bytes:
    return b"".join(p.read_bytes() for p in project.glob("store.db*"))


@pytest.mark.slow
def test_empty_answers_make_the_run_incomplete_and_the_key_is_scrubbed(project: Path) -> None:
    def plan(rid: str, attempt: int) -> str:
        i = int(rid[1:])
        if i % 5 == 0:
            return "json:" + NULL  # 8 of 40 examples (20%) never get an answer
        return "leak200" if i in (3, 7) else "ok"

    options = {"api_key_env": KEY_ENV, "max_retries": 1, "backoff_base": 0.001}
    with FaultServer(plan, api_key=KEY) as server:
        out = _run(project, server.url, options, "--out", "out", "--fail-on", "abandon")
        # the same run again: every answer comes from the store, the verdict is the same
        again = _run(project, server.url, options, "--fail-on", "never", "--json")
    assert out.returncode == 1, out.stderr[-2000:]
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads((project / "out" / "report.json").read_text())
    verdict = report["verdict"]
    assert verdict["decision"] == "INCOMPLETE"
    assert any(
        "finetuned failed on 8 of 40 examples (20.0%, above the 5.0% allowed): "
        "8 empty answer (content: null)" in r
        for r in verdict["reasons"]
    )
    contender = {c["name"]: c for c in report["tasks"][0]["contenders"]}["finetuned"]
    assert contender["errors"] == 8 and contender["error_kinds"] == {
        "empty answer (content: null)": 8
    }
    # the answers that quoted the key: scrubbed, and the report says so
    outputs = {e["id"]: e["outputs"] for e in report["tasks"][0]["examples"]}
    assert outputs["e003"]["base"] == "my headers said Authorization: Bearer ***"
    assert outputs["e005"]["base"] is None  # an error, not an empty answer
    notes = [e for e in report["errors"] if "API key appeared in 2 answer(s)" in e]
    assert len(notes) == 2  # base and finetuned
    assert report["meta"]["api_key_scrubbed"] == {"base on echo": 2, "finetuned on echo": 2}
    rerun = json.loads(again.stdout)
    assert rerun["verdict"]["decision"] == "INCOMPLETE"
    assert rerun["meta"]["api_key_scrubbed"] == report["meta"]["api_key_scrubbed"]
    md = (project / "out" / "report.md").read_text()
    texts = [out.stdout, out.stderr, again.stdout, again.stderr, md, json.dumps(report)]
    assert "INCOMPLETE" in md and "***" in md
    assert not any(KEY in t for t in texts)
    assert KEY.encode() not in _stored_bytes(project)


@pytest.mark.slow
def test_a_few_failed_examples_keep_the_verdict_and_are_named(project: Path) -> None:
    plan = lambda rid, attempt: "json:" + NULL if rid == "e013" else "ok"  # noqa: E731
    with FaultServer(plan) as server:
        out = _run(project, server.url, {"max_retries": 0}, "--json", "--fail-on", "never")
    assert out.returncode == 0, out.stderr[-2000:]
    verdict = json.loads(out.stdout)["verdict"]
    assert verdict["decision"] != "INCOMPLETE"
    dropped = [r for r in verdict["reasons"] if "dropped" in r]
    assert len(dropped) == 1
    assert "1 of 40 examples dropped from the comparison with base by backend errors" in dropped[0]
    for name in ("base", "finetuned"):
        assert f"{name} failed on 1 of 40 (1 empty answer (content: null))" in dropped[0]


@pytest.mark.slow
def test_a_server_that_never_answers_ends_the_run_with_exit_2(project: Path) -> None:
    options = {"timeout": 0.3, "max_retries": 0, "hang_after": 3, "concurrency": 2}
    with FaultServer(lambda rid, attempt: "hang") as server:
        out = _run(project, server.url, options)
        arrivals = sum(server.attempts.values())
    assert out.returncode == 2
    assert "accepts connections but answers nothing within 0.3 s" in out.stderr
    assert "Traceback" not in out.stderr
    assert arrivals <= 3 + 2  # stopped at the third timeout, not after 80 requests
    runs = subprocess.run(
        [sys.executable, "-m", "tunecheck", "runs", "--store", "store.db", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(runs.stdout)[0]["status"] == "failed"
