"""The shadow proxy against real stub servers (all subprocesses on free local ports)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from shadow_procs import chat_body, closed_port_url, env, rows, wait_rows

from tunecheck.shadow.config import ShadowConfig, ShadowConfigError, assign_variant

CALLER_KEY = "sk-caller-0123456789abcdef"
CANDIDATE_KEY = "sk-candidate-fedcba9876543210"
_DROP = {"x-request-id", "date", "server"}  # differ per call, by design of the stub


def _call(client: httpx.Client, base: str, path: str, body: dict, **headers: str) -> httpx.Response:
    h = {"authorization": f"Bearer {CALLER_KEY}", **headers}
    return client.post(base + path, json=body, headers=h)


def _same_response(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code
    assert a.content == b.content
    ha = {
        k: v
        for k, v in a.headers.items()
        if k not in _DROP | {"transfer-encoding", "content-length"}
    }
    hb = {
        k: v
        for k, v in b.headers.items()
        if k not in _DROP | {"transfer-encoding", "content-length"}
    }
    assert ha == hb
    assert "x-request-id" in a.headers  # relayed, not swallowed


def _requests(n: int) -> list[tuple[str, dict]]:
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(("/completions", {"model": "prod-model", "prompt": f"complete {i}"}))
        else:
            out.append(("/chat/completions", chat_body(f"question {i}", stream=i % 3 == 2)))
    return out


def _db_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


@pytest.mark.slow
def test_mirror_relays_production_unchanged_and_logs_pairs(stubs, proxies, tmp_path: Path) -> None:
    prod = stubs("ok", model="prod-model")
    cand = stubs("ok", model="cand-model")
    proxy = proxies(
        prod.url,
        cand.url,
        "--candidate-model",
        "cand-model",
        extra_env={"TUNECHECK_CANDIDATE_API_KEY": CANDIDATE_KEY},
    )
    reqs = _requests(12)
    with httpx.Client(timeout=30) as client:
        for path, body in reqs:
            via = _call(client, proxy.url, path, body)
            direct = _call(client, prod.url, path, body)
            _same_response(via, direct)
        # a non-completion route is passed through to production untouched
        assert client.get(proxy.url + "/models").json()["data"][0]["id"] == "prod-model"
    db = tmp_path / "shadow.db"
    assert wait_rows(db, "mirror = 'done' and cand_status is not null", 12) == 12
    log = rows(db)
    assert len(log) == 12
    for (path, body), row in zip(reqs, log, strict=True):
        asked = body.get("prompt") or body["messages"][-1]["content"]
        assert row["endpoint"] == ("completions" if path == "/completions" else "chat")
        assert row["request"] == body  # the caller's request, as sent
        assert row["prod_status"] == row["cand_status"] == 200
        assert row["prod_text"] == row["cand_text"] == f"echo: {asked}"
        assert row["prod_completion_tokens"] == len(f"echo: {asked}".split())
        assert row["prod_latency_ms"] > 0 and row["cand_latency_ms"] > 0
        assert row["stream"] == bool(body.get("stream"))
        assert row["prod_error"] is None and row["cand_error"] is None
    # keys: the caller's to production only, the candidate's to the candidate only
    assert prod.stats()["auth"] == [f"Bearer {CALLER_KEY}"]
    assert cand.stats()["auth"] == [f"Bearer {CANDIDATE_KEY}"]
    # production's errors come back unchanged too; a body that is not JSON is not mirrored
    with httpx.Client(timeout=30) as client:
        h = {"authorization": f"Bearer {CALLER_KEY}", "content-type": "application/json"}
        via = client.post(proxy.url + "/chat/completions", content=b"{not json", headers=h)
        direct = client.post(prod.url + "/chat/completions", content=b"{not json", headers=h)
    assert via.status_code == direct.status_code == 400 and via.content == direct.content
    assert wait_rows(db, "prod_status = 400 and mirror = 'unparsable'", 1) == 1
    assert cand.stats()["requests"] == 12
    out = proxy.stop()
    assert "stopped: 13 requests, 12 mirrored, 0 mirrors dropped" in out
    blob = _db_bytes(db)
    for key in (CALLER_KEY, CANDIDATE_KEY):
        assert key.encode() not in blob and key not in out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hang", "error", "reset", "slow", "leak"])
def test_a_misbehaving_candidate_never_touches_production(
    mode: str, stubs, proxies, tmp_path: Path
) -> None:
    prod = stubs("ok", model="prod-model")
    cand = stubs("ok", delay=0.5) if mode == "slow" else stubs(mode)
    proxy = proxies(
        prod.url,
        cand.url,
        "--candidate-timeout",
        "30",
        extra_env={"TUNECHECK_CANDIDATE_API_KEY": CANDIDATE_KEY},
    )
    reqs = _requests(9)
    with httpx.Client(timeout=30) as client:
        for path, body in reqs:
            _same_response(
                _call(client, proxy.url, path, body), _call(client, prod.url, path, body)
            )
    db = tmp_path / "shadow.db"
    assert wait_rows(db, "prod_status = 200", 9) == 9
    if mode == "hang":
        # every production answer came back while the candidate had answered nothing
        assert cand.stats()["requests"] >= 1
        assert wait_rows(db, "cand_status is not null or cand_error is not null", 1, 0.5) == 0
    else:
        assert wait_rows(db, "mirror = 'done'", 9) == 9
        log = rows(db)
        if mode == "slow":
            # the stub sleeps 0.5 s; an event loop's timers may fire a millisecond early
            assert all(r["cand_status"] == 200 and r["cand_latency_ms"] >= 450 for r in log)
        elif mode == "error":
            assert all(r["cand_status"] == 500 and "overloaded" in r["cand_error"] for r in log)
        elif mode == "reset":
            assert all(
                r["cand_status"] is None and "upstream failed" in r["cand_error"] for r in log
            )
        elif mode == "leak":  # the candidate quotes its Authorization header: scrubbed
            assert all(r["cand_status"] == 500 and "Bearer ***" in r["cand_error"] for r in log)
    out = proxy.stop()
    for key in (CALLER_KEY, CANDIDATE_KEY):
        assert key.encode() not in _db_bytes(db) and key not in out


@pytest.mark.slow
def test_full_mirror_queue_drops_and_counts(stubs, proxies, tmp_path: Path) -> None:
    prod, cand = stubs("ok"), stubs("hang")
    proxy = proxies(prod.url, cand.url, "--mirror-queue", "1", "--mirror-concurrency", "1")
    with httpx.Client(timeout=30) as client:
        for i in range(10):  # one at a time: the worker holds #1, the queue holds #2
            assert (
                _call(client, proxy.url, "/chat/completions", chat_body(f"q{i}")).status_code == 200
            )
    db = tmp_path / "shadow.db"
    assert wait_rows(db, "mirror = 'dropped'", 8) == 8
    assert wait_rows(db, "mirror = 'pending'", 2) == 2
    assert "10 requests, 2 mirrored, 8 mirrors dropped" in proxy.stop()


@pytest.mark.slow
def test_mirror_fraction_and_no_content(stubs, proxies, tmp_path: Path) -> None:
    prod, cand = stubs("ok"), stubs("ok")
    proxy = proxies(prod.url, cand.url, "--mirror-fraction", "0.5", "--seed", "3", "--no-content")
    with httpx.Client(timeout=30) as client:
        for i in range(40):
            _call(client, proxy.url, "/chat/completions", chat_body(f"secret text {i}"))
    proxy.stop()
    db = tmp_path / "shadow.db"
    log = rows(db)
    mirrored = [r for r in log if r["mirror"] == "done"]
    skipped = [r for r in log if r["mirror"] == "not_sampled"]
    assert len(mirrored) + len(skipped) == 40 and 8 <= len(mirrored) <= 32
    assert cand.stats()["requests"] == len(mirrored)
    assert b"secret text" not in _db_bytes(db)
    import hashlib

    for r in log:
        assert r["request"] is None and r["prod_text"] is None
        i = int(
            next(
                x
                for x in range(40)
                if hashlib.sha256(f"echo: secret text {x}".encode()).hexdigest() == r["prod_sha256"]
            )
        )
        assert r["prod_chars"] == len(f"echo: secret text {i}")
    for r in mirrored:
        assert r["cand_text"] is None and r["cand_sha256"] == r["prod_sha256"]
    from tunecheck.shadow.log import load_requests
    from tunecheck.shadow.report import build_report

    rep = build_report(*load_requests(str(db)))
    assert rep.pairs == len(mirrored) and rep.counts["not_sampled"] == len(skipped)
    assert not rep.content and rep.identical == 1.0 and rep.disagreements == []
    assert rep.length.name == "completion tokens" and rep.length.difference == 0
    assert any("--no-content" in n for n in rep.notes)


@pytest.mark.slow
def test_split_is_sticky_per_user_and_logged(stubs, proxies, tmp_path: Path) -> None:
    prod, cand = stubs("ok", model="prod-model"), stubs("ok", model="cand-model")
    proxy = proxies(
        prod.url,
        cand.url,
        "--split",
        "0.3",
        "--experiment",
        "exp1",
        extra_env={"TUNECHECK_CANDIDATE_API_KEY": CANDIDATE_KEY},
    )
    users = [f"user-{i}" for i in range(30)]
    with httpx.Client(timeout=30) as client:
        for rep in range(2):
            for i, u in enumerate(users):
                if i % 2:  # the header, or the OpenAI `user` field of the body
                    _call(
                        client,
                        proxy.url,
                        "/chat/completions",
                        chat_body(f"{u} {rep}"),
                        **{"x-user-id": u},
                    )
                else:
                    _call(client, proxy.url, "/chat/completions", chat_body(f"{u} {rep}", user=u))
        _call(client, proxy.url, "/chat/completions", chat_body("anonymous"))
    proxy.stop()
    log = rows(tmp_path / "shadow.db")
    assert len(log) == 61
    by_user: dict[str, set[str]] = {}
    for r in log:
        if r["unit_id"] is None:
            assert r["variant"] == "production" and r["prod_status"] == 200
            continue
        by_user.setdefault(r["unit_id"], set()).add(r["variant"])
        side = "cand" if r["variant"] == "candidate" else "prod"
        assert r[f"{side}_status"] == 200 and r["mirror"] == "off"
    assert set(by_user) == set(users)
    expected = {u: assign_variant(u, 0.3, "exp1") for u in users}
    assert by_user == {u: {v} for u, v in expected.items()}  # sticky
    n_cand = sum(v == "candidate" for v in expected.values())
    assert 0 < n_cand < 30
    assert cand.stats()["requests"] == 2 * n_cand
    assert prod.stats()["requests"] == 2 * (30 - n_cand) + 1
    # users served by the candidate reach it with its own key, never the caller's
    assert cand.stats()["auth"] == [f"Bearer {CANDIDATE_KEY}"]
    assert prod.stats()["auth"] == [f"Bearer {CALLER_KEY}"]
    from tunecheck.shadow.log import load_requests
    from tunecheck.shadow.report import build_report

    rep = build_report(*load_requests(str(tmp_path / "shadow.db")))
    assert rep.pairs == 0 and rep.counts["off"] == 61
    assert rep.variants["candidate"]["requests"] == 2 * n_cand
    assert rep.variants["candidate"]["units"] == n_cand
    assert rep.variants["production"]["unassigned"] == 1
    assert rep.variants["production"]["error_rate"] == 0.0


@pytest.mark.slow
def test_bad_settings_exit_2(stubs, tmp_path: Path) -> None:
    prod = stubs("ok")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tunecheck",
                "shadow",
                *args,
                "--port",
                "0",
                "--store",
                str(tmp_path / "s.db"),
            ],
            capture_output=True,
            text=True,
            env=env(),
            timeout=60,
        )

    dead = closed_port_url()
    r = run("--production", dead, "--candidate", prod.url)
    assert r.returncode == 2
    assert "production endpoint" in r.stderr and "unreachable" in r.stderr and dead in r.stderr
    r = run("--production", prod.url, "--candidate", prod.url, "--split", "1.5")
    assert r.returncode == 2 and "--split must be strictly between 0 and 1, got 1.5" in r.stderr
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ShadowConfigError, match="strictly between 0 and 1"):
            ShadowConfig(prod.url, prod.url, split=bad)
    with pytest.raises(ShadowConfigError, match="--mirror-fraction"):
        ShadowConfig(prod.url, prod.url, mirror_fraction=2)
    with pytest.raises(ShadowConfigError, match="http"):
        ShadowConfig("localhost:8000", prod.url)


def _load(url: str, n: int, workers: int = 16, stop: threading.Event | None = None) -> list[int]:
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=workers))

    def one(i: int) -> int:
        if stop is not None and stop.is_set():
            return -1
        try:
            with contextlib.nullcontext(client) as c:
                r = c.post(
                    url + "/chat/completions",
                    json=chat_body(f"load {i}"),
                    headers={"x-test-id": f"t{i}"},
                )
                return r.status_code
        except httpx.HTTPError:
            return -2

    with client, concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, range(n)))


@pytest.mark.slow
def test_no_request_lost_or_duplicated_while_the_candidate_hangs(
    stubs, proxies, tmp_path: Path
) -> None:
    prod, cand = stubs("ok"), stubs("hang")
    proxy = proxies(prod.url, cand.url, "--mirror-queue", "32", "--mirror-concurrency", "4")
    statuses = _load(proxy.url, 300)
    assert statuses == [200] * 300
    ids = prod.stats()["ids"]
    assert len(ids) == 300 and set(ids.values()) == {1}  # each exactly once at production
    out = proxy.stop()
    log = rows(tmp_path / "shadow.db")
    assert len(log) == 300 and len({r["id"] for r in log}) == 300
    assert sorted(r["prod_text"] for r in log) == sorted(f"echo: load {i}" for i in range(300))
    dropped = sum(r["mirror"] == "dropped" for r in log)
    assert dropped >= 300 - 4 - 32 and f"{dropped} mirrors dropped" in out


@pytest.mark.slow
def test_sigkill_during_load_keeps_every_logged_pair(stubs, proxies, tmp_path: Path) -> None:
    prod, cand = stubs("ok"), stubs("ok")
    proxy = proxies(prod.url, cand.url)
    db = tmp_path / "shadow.db"
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(_load, proxy.url, 3000, 8, stop)
        seen = wait_rows(db, "prod_status = 200 and cand_status = 200", 100)
        assert seen >= 100
        os.kill(proxy.proc.pid, signal.SIGKILL)
        proxy.proc.wait(10)
        stop.set()
        fut.result()
    con = sqlite3.connect(db)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    con.close()
    log = rows(db)
    done = [r for r in log if r["prod_status"] == 200 and r["cand_status"] == 200]
    assert len(done) >= seen  # nothing committed before the kill is gone
    for r in done:
        asked = r["request"]["messages"][-1]["content"]
        assert r["prod_text"] == r["cand_text"] == f"echo: {asked}"
