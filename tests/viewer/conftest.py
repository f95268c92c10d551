"""Fixtures of the viewer tests: scripted runs in a fresh store (see viewer_fixtures)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from viewer_fixtures import ScriptedRun, make_run


@pytest.fixture(scope="session")
def scripted_run(tmp_path_factory: pytest.TempPathFactory) -> ScriptedRun:
    """One scripted run shared by the viewer tests (read-only: tests copy before writing)."""
    return make_run(tmp_path_factory.mktemp("viewer-run"))


@pytest.fixture()
def fresh_run(tmp_path: Path) -> ScriptedRun:
    """A scripted run of this test's own (for tests that write reviews)."""
    return make_run(tmp_path, n=120)
