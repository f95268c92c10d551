"""The run store: runs, contenders, examples, the generation cache, scores, training points.

SQLite at ``.tunecheck/tunecheck.db`` by default; any SQLAlchemy URL through ``--store``
or ``TUNECHECK_STORE`` (PostgreSQL works the same way). The parts:

- :mod:`~tunecheck.store.connection`: :func:`open_store`, the URL and the migrations
- :mod:`~tunecheck.store.repository`: :class:`Store`, every read and write
- :mod:`~tunecheck.store.rows`: the typed rows reads return (:class:`RunDetail`, ...)
- :mod:`~tunecheck.store.schema`: the tables; ``migrations/``: their Alembic history
- :mod:`~tunecheck.store.existing`: open a store only if one exists (read-only verbs)
"""

from __future__ import annotations

from tunecheck.store.connection import DEFAULT_PATH, SCHEMA_REVISION, default_store_url, open_store
from tunecheck.store.repository import Store
from tunecheck.store.rows import ContenderRecord, OutputRecord, RunDetail, RunRecord, TrainingPoint

__all__ = [
    "DEFAULT_PATH",
    "SCHEMA_REVISION",
    "ContenderRecord",
    "OutputRecord",
    "RunDetail",
    "RunRecord",
    "Store",
    "TrainingPoint",
    "default_store_url",
    "open_store",
]
