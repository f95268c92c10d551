"""Open a run store only if one exists: what read-only verbs (``runs``, ``show``, ``report``) use.

:func:`tunecheck.store.open_store` creates and migrates a store on first use, which is
right for ``tunecheck run`` but wrong for a verb that only reads: a typo in ``--store``
or running from the wrong folder would leave an empty database behind and answer
"no runs" instead of saying where it looked.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tunecheck.errors import TunecheckError
from tunecheck.store import Store, default_store_url, open_store


class NoStoreError(TunecheckError):
    """There is no run store where a read-only verb looked (exit 2)."""


_HINT = (
    "run `tunecheck run tunecheck.yaml` first, or point --store (or TUNECHECK_STORE) at the "
    "store the run used (the spec's `store:` key, default sqlite:///.tunecheck/tunecheck.db "
    "next to where you ran it)"
)


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///"))
    return None


def open_existing_store(url: str | None = None) -> Store:
    """The store at ``url`` (default as :func:`open_store`), or :class:`NoStoreError`.

    Nothing is created: a missing SQLite file, or a database without tunecheck's
    tables, is reported with the place that was looked at.
    """
    url = url or default_store_url()
    if "://" not in url:
        url = f"sqlite:///{url}"
    path = _sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise NoStoreError(f"no run store here (no file {path})", where=url, hint=_HINT)
        if path.stat().st_size == 0:
            raise NoStoreError("not a tunecheck run store (empty file)", where=url, hint=_HINT)
    elif url == "sqlite:///:memory:":
        raise NoStoreError("an in-memory store holds no earlier runs", where=url, hint=_HINT)
    if not _has_runs_table(url):
        raise NoStoreError("no tunecheck run store in this database", where=url, hint=_HINT)
    return open_store(url)


def _has_runs_table(url: str) -> bool:
    from sqlalchemy import create_engine, inspect

    from tunecheck.store.connection import engine_for

    engine = engine_for(url)
    try:
        if engine.dialect.name == "sqlite":
            path = _sqlite_path(url)
            # read-only URI: inspecting must never create or change the file
            engine.dispose()
            engine = create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, check_same_thread=False
                ),
            )
        return "runs" in inspect(engine).get_table_names()
    except Exception as err:
        raise TunecheckError(
            f"cannot read the run store: {type(err).__name__}: {err}", where=url, hint=_HINT
        ) from None
    finally:
        engine.dispose()
