"""Fixtures of the shadow tests: canned stub servers and the proxy itself, each a
subprocess on a free 127.0.0.1 port, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from shadow_procs import Proc, spawn


@pytest.fixture()
def stubs() -> Iterator:
    """``stubs(mode="ok", delay=0)`` starts a stub server; all are stopped afterwards."""
    started: list[Proc] = []

    def start(mode: str = "ok", delay: float = 0.0, model: str = "stub", *extra: str) -> Proc:
        p = spawn(
            [
                "-m",
                "tunecheck.shadow.stub",
                "--mode",
                mode,
                "--delay",
                str(delay),
                "--model",
                model,
                *extra,
                "--lifetime",
                "600",
            ]
        )
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture()
def proxies(tmp_path: Path) -> Iterator:
    """``proxies(production, candidate, *args, env=...)`` starts ``tunecheck shadow``."""
    started: list[Proc] = []

    def start(production: str, candidate: str, *args: str, extra_env: dict | None = None) -> Proc:
        p = spawn(
            [
                "-m",
                "tunecheck",
                "shadow",
                "--production",
                production,
                "--candidate",
                candidate,
                "--port",
                "0",
                "--store",
                str(tmp_path / "shadow.db"),
                "--shutdown-grace",
                "0.2",
                *args,
            ],
            extra_env,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
