"""``tunecheck shadow`` under load: latency the proxy adds, and no request lost.

Everything on 127.0.0.1, bounded in requests and time: an instant production stub
and a candidate stub (``tunecheck.shadow.stub``, separate processes), the proxy
(``tunecheck shadow``, its own process, logging to a fresh SQLite store) and, in
this process, an open-loop load generator at RATE requests/s for SECONDS seconds.
Every tick sends one request **directly** to production and one **through the
proxy**, interleaved, so machine load hits both alike; the added latency is the
difference of the two distributions' percentiles. Two phases: a healthy candidate,
then a candidate that hangs on every request.

Checked after each phase: every request answered 200; production saw each request
id exactly once (none lost, none duplicated); the store holds exactly one row per
proxied request, each with production's answer.

Targets: added p50 <= 2 ms, added p99 <= 10 ms, zero lost or duplicated.
``TUNECHECK_BENCH_SHADOW_SECONDS`` shortens the run (default 30).
``TUNECHECK_BENCH_SHADOW_CANDIDATES`` picks the candidate phases (default ``ok,hang``;
also ``error`` (500 to everything), ``reset`` (drops every connection) and ``slow``
(answers after 5 ms, over 10x production's latency here)).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 200.0
SECONDS = float(os.environ.get("TUNECHECK_BENCH_SHADOW_SECONDS", "30"))
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
_URL = re.compile(r"http://127\.0\.0\.1:\d+/v1")


def _spawn(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = _URL.search(line)
        if m:
            return proc, m.group(0)
    proc.kill()
    raise RuntimeError("did not start: " + "".join(seen))


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read() if proc.stdout else ""


class _Client:
    """A minimal HTTP/1.1 keep-alive client (asyncio streams), cheap enough that the
    load generator does not starve the processes it measures. Same client both ways."""

    def __init__(self, base: str) -> None:
        m = re.match(r"http://([^:/]+):(\d+)(/.*)?", base)
        assert m
        self.host, self.port, self.prefix = m.group(1), int(m.group(2)), m.group(3) or ""
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, test_id: str) -> int:
        conn = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        reader, writer = conn
        writer.write(
            b"POST %s%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"X-Test-Id: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (
                self.prefix.encode(),
                path.encode(),
                self.host.encode(),
                test_id.encode(),
                len(body),
                body,
            )
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        low = head.lower()
        if b"content-length:" in low:
            n = int(low.split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(n)
        else:  # chunked
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        self.idle.append(conn)
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def _load(direct: str, proxied: str, seconds: float) -> dict[str, list]:
    clients = {"direct": _Client(direct), "proxy": _Client(proxied)}
    lat: dict[str, list[float]] = {"direct": [], "proxy": []}
    status: dict[str, list[int]] = {"direct": [], "proxy": []}

    async def one(kind: str, i: int) -> None:
        body = b'{"model": "m", "messages": [{"role": "user", "content": "request %d"}]}' % i
        start = time.perf_counter()
        try:
            status[kind].append(await clients[kind].post("/chat/completions", body, f"{kind}-{i}"))
        except Exception:
            status[kind].append(-1)
        lat[kind].append((time.perf_counter() - start) * 1000)

    n = int(RATE * seconds)
    tasks = []
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        # alternate which goes first so neither path always gets the earlier slot
        for kind in ("direct", "proxy") if i % 2 else ("proxy", "direct"):
            tasks.append(asyncio.create_task(one(kind, i)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 120)
    for c in clients.values():
        c.close()
    return {**lat, "status_direct": status["direct"], "status_proxy": status["proxy"]}


_CANDIDATES = {  # phase name -> the candidate stub's arguments
    "ok": ("healthy candidate", ["--mode", "ok"]),
    "hang": ("hanging candidate", ["--mode", "hang"]),
    "error": ("candidate answering 500", ["--mode", "error"]),
    "reset": ("candidate resetting connections", ["--mode", "reset"]),
    "slow": ("slow candidate (5 ms)", ["--mode", "ok", "--delay", "0.005"]),
}


def _phase(name: str, candidate_args: list[str], workdir: Path) -> bool:
    import httpx

    candidate_mode = " ".join(candidate_args)
    prod, prod_url = _spawn(["-m", "tunecheck.shadow.stub", "--lifetime", "900"])
    cand, cand_url = _spawn(["-m", "tunecheck.shadow.stub", *candidate_args, "--lifetime", "900"])
    db = workdir / f"{name.split()[0]}-{len(list(workdir.iterdir()))}.db"
    proxy, proxy_url = _spawn(
        [
            "-m",
            "tunecheck",
            "shadow",
            "--production",
            prod_url,
            "--candidate",
            cand_url,
            "--port",
            "0",
            "--store",
            str(db),
            "--shutdown-grace",
            "1",
        ]
    )
    try:
        asyncio.run(_load(prod_url, proxy_url, 1.0))  # warm up: connections, first requests
        base_ids = httpx.get(prod_url.removesuffix("/v1") + "/stats", timeout=30).json()["ids"]
        res = asyncio.run(_load(prod_url, proxy_url, SECONDS))
        stats = httpx.get(prod_url.removesuffix("/v1") + "/stats", timeout=30).json()
    finally:
        out = _stop(proxy)
        _stop(prod)
        _stop(cand)
    n = int(RATE * SECONDS)
    ids = stats["ids"]
    lost = dup = 0
    for kind in ("direct", "proxy"):
        for i in range(n):
            seen = ids.get(f"{kind}-{i}", 0) - base_ids.get(f"{kind}-{i}", 0)
            lost += seen == 0
            dup += seen > 1
    con = sqlite3.connect(db)
    rows, distinct, answered = con.execute(
        "select count(*), count(distinct id), sum(prod_status = 200) from shadow_requests"
    ).fetchone()
    dropped = con.execute(
        "select count(*) from shadow_requests where mirror = 'dropped'"
    ).fetchone()[0]
    con.close()
    expect_rows = n + int(RATE * 1.0)  # the warm-up went through the proxy too
    d, p = np.array(res["direct"]), np.array(res["proxy"])
    p50d, p99d = np.percentile(d, [50, 99])
    p50p, p99p = np.percentile(p, [50, 99])
    add50, add99 = p50p - p50d, p99p - p99d
    bad_status = sum(s != 200 for s in res["status_direct"] + res["status_proxy"])
    print(
        f"[{name}] {n} requests each way at {RATE:.0f}/s for {SECONDS:.0f} s; candidate: {candidate_mode}\n"
        f"  direct   p50 {p50d:6.2f} ms  p99 {p99d:6.2f} ms\n"
        f"  proxied  p50 {p50p:6.2f} ms  p99 {p99p:6.2f} ms\n"
        f"  added    p50 {add50:+6.2f} ms (target <= {TARGET_P50_MS}), "
        f"p99 {add99:+6.2f} ms (target <= {TARGET_P99_MS})\n"
        f"  non-200 answers {bad_status}, lost {lost}, duplicated {dup}; store rows {rows} "
        f"(expected {expect_rows}, distinct {distinct}, answered {answered}), mirrors dropped {dropped}",
        flush=True,
    )
    if "stopped" in out:
        print("  proxy: " + out.strip().splitlines()[-1])
    ok_rows = rows == distinct == answered == expect_rows
    return bool(
        add50 <= TARGET_P50_MS
        and add99 <= TARGET_P99_MS
        and not (lost or dup or bad_status)
        and ok_rows
    )


def main() -> bool:
    wanted = os.environ.get("TUNECHECK_BENCH_SHADOW_CANDIDATES", "ok,hang").split(",")
    unknown = [w for w in wanted if w.strip() not in _CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidate phase(s) {unknown}; choose from {list(_CANDIDATES)}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in wanted:
            name, args = _CANDIDATES[w.strip()]
            results.append(_phase(name, args, Path(tmp)))
    return all(results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
