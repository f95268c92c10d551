"""Store tests run on SQLite and on a real PostgreSQL server started for the session
(skipped, with the reason shown, where no PostgreSQL binaries or psycopg driver exist)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pg_server import PostgresServer


@pytest.fixture(scope="session")
def pg_session_server():
    why = PostgresServer.missing()
    if why:
        pytest.skip(f"PostgreSQL store tests skipped: {why}")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    """A fresh, empty store database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tunecheck.db'}"
    server = request.getfixturevalue("pg_session_server")
    return server.create_database(f"t{uuid.uuid4().hex[:10]}")
