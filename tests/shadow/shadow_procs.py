"""Helpers of the shadow tests: start real processes (stub servers, the proxy) on free
127.0.0.1 ports, read the request log."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_URL = re.compile(r"http://127\.0\.0\.1:\d+/v1")


@dataclass
class Proc:
    proc: subprocess.Popen
    url: str
    lines: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def stats(self) -> dict:
        return httpx.get(self.root + "/stats", timeout=10).json()

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop the process and return everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rest = self.proc.stdout.read() if self.proc.stdout else ""
        return "".join(self.lines) + (rest or "")


def _first_url(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[str, list[str]]:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.2):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = _URL.search(line)
        if m:
            return m.group(0), lines
    proc.kill()
    raise RuntimeError("process did not start: " + "".join(lines) + (proc.stdout.read() or ""))


def env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    e = dict(os.environ)
    e["PYTHONPATH"] = src + os.pathsep + e.get("PYTHONPATH", "")
    return e


def spawn(args: list[str], extra_env: dict[str, str] | None = None) -> Proc:
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env(), **(extra_env or {})},
    )
    url, lines = _first_url(proc)
    return Proc(proc, url, lines)


def chat_body(
    text: str, *, stream: bool = False, user: str | None = None, model: str = "prod-model"
) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    if user is not None:
        body["user"] = user
    return body


def wait_rows(db: Path, where: str, n: int, timeout: float = 60.0) -> int:
    """Poll the store until ``n`` rows match ``where`` (the log writes in the background)."""
    import sqlite3

    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        try:
            con = sqlite3.connect(db)
            got = con.execute(f"select count(*) from shadow_requests where {where}").fetchone()[0]
            con.close()
        except sqlite3.OperationalError:
            got = 0
        if got >= n:
            return got
        time.sleep(0.05)
    return got


def rows(db: Path) -> list[dict]:
    import sqlite3

    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    out = [dict(r) for r in con.execute("select * from shadow_requests order by created_at, id")]
    con.close()
    for r in out:
        if r.get("request"):
            r["request"] = json.loads(r["request"])
    return out


def closed_port_url() -> str:
    """A base URL where nothing listens (the port was bound and released)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"
