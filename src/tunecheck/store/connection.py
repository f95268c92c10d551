"""Opening the run store: the URL, the engine (one per database per process) and the schema migrations.

SQLite at ``.tunecheck/tunecheck.db`` by default (WAL journal, so a reader never
blocks the writer and a killed process loses nothing committed); any SQLAlchemy
URL through ``--store`` or ``TUNECHECK_STORE`` (PostgreSQL works the same way).

Creating and migrating a store is serialised between processes (a lock file next to
a SQLite database, an advisory lock on PostgreSQL), and a ``running`` run whose
process died is marked ``interrupted`` the next time the store is opened.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from tunecheck.errors import TunecheckError
from tunecheck.store.repository import Store

#: the Alembic head revision this code expects (a test keeps it equal to the migrations)
SCHEMA_REVISION = "0006"
DEFAULT_PATH = Path(".tunecheck") / "tunecheck.db"


def default_store_url() -> str:
    """``TUNECHECK_STORE`` if set, else SQLite in ``.tunecheck/`` of the current folder."""
    return os.environ.get("TUNECHECK_STORE") or f"sqlite:///{DEFAULT_PATH}"


# any fixed number: the PostgreSQL advisory lock held while the store is migrated
_PG_MIGRATION_LOCK = 0x7475_6E65


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _migrate(engine: Engine) -> None:
    """Create or upgrade the schema; safe when several processes open a new store at once."""
    if _revision(engine) == SCHEMA_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))

    def upgrade() -> None:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # held to the end of this transaction: one migrating process at a time
                conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            cfg.attributes["connection"] = conn
            # under the lock alembic re-reads the version: a store another process has
            # just migrated is already at head and nothing runs twice
            command.upgrade(cfg, "head")

    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        from filelock import FileLock

        with FileLock(f"{database}.migrate.lock", timeout=300):
            upgrade()
        return
    try:
        upgrade()
    except Exception:
        # other databases: whoever lost the race finds the schema already there
        if _revision(engine) != SCHEMA_REVISION:
            raise


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # wait for other writers first: switching a new database to WAL takes a lock too
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


_ENGINES: dict[str, Store] = {}


def engine_for(url: str) -> Engine:
    """A SQLAlchemy engine for ``url``; a URL it cannot use is a :class:`TunecheckError`."""
    try:
        return create_engine(url, future=True)
    except Exception as err:
        raise TunecheckError(
            f"cannot open the run store: {err}",
            where=url,
            hint="pass a SQLAlchemy URL with --store or TUNECHECK_STORE",
        ) from None


def open_store(url: str | None = None) -> Store:
    """Open (creating and migrating as needed) the store at ``url``.

    ``url`` defaults to ``TUNECHECK_STORE`` or SQLite under ``.tunecheck/``. A plain
    file path is accepted and treated as a SQLite database.
    """
    url = url or default_store_url()
    if "://" not in url:
        url = f"sqlite:///{url}"
    key = url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TunecheckError(
                f"cannot create the store folder: {err}", where=str(path.parent)
            ) from None
        key = f"sqlite:///{path.resolve()}"
    if key in _ENGINES:
        return _ENGINES[key]
    engine = engine_for(key)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _migrate(engine)
    except Exception as err:
        raise TunecheckError(f"cannot open the run store: {err}", where=url) from None
    store = Store(engine)
    # a store opened read-only can still be read; the next writer marks the dead runs
    with contextlib.suppress(SQLAlchemyError):
        store.mark_dead_runs()
    _ENGINES[key] = store
    return store


__all__ = ["DEFAULT_PATH", "SCHEMA_REVISION", "default_store_url", "open_store"]
