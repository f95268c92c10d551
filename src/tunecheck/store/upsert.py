"""Idempotent cache writes: insert-or-ignore / upsert on the cache key.

Two runs on one store may generate the same request at the same time; whichever
commits second must neither crash on the unique key nor replace a stored answer.
SQLite and PostgreSQL get one ``INSERT ... ON CONFLICT`` statement (their SQLAlchemy
dialect inserts); other databases fall back to one savepoint per row. Rows are
written in key order, so two transactions writing overlapping keys lock them in the
same order and cannot deadlock (PostgreSQL locks each key it inserts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tunecheck.store.schema import Base, GenerationRow

# rows per statement: far below SQLite's bound-parameter limit at ten columns a row
_ROWS = 50
_KEY = ["model_fp", "request_key"]


def _dialect_insert(session: Session | Connection) -> Any:
    name = (
        session.dialect.name if isinstance(session, Connection) else session.get_bind().dialect.name
    )
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    return None


def upsert_generations(session: Session | Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert generation rows; on a key already stored, only an error row is replaced.

    An answer is never overwritten (by an error or by another process's copy of the
    same answer); an error is replaced by whatever arrives next.
    """
    rows = sorted(rows, key=lambda r: (r["model_fp"], r["request_key"]))
    insert = _dialect_insert(session)
    if insert is None:
        _fallback(session, rows, replace_errors=True)
        return
    for i in range(0, len(rows), _ROWS):
        stmt = insert(GenerationRow).values(list(rows[i : i + _ROWS]))
        new = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=_KEY,
            set_={
                "request": new.request,
                "texts": new.texts,
                "meta": new.meta,
                "error": new.error,
                "prompt_tokens": new.prompt_tokens,
                "completion_tokens": new.completion_tokens,
                "created_at": new.created_at,
            },
            where=GenerationRow.error.is_not(None),
        )
        session.execute(stmt)


def insert_ignore(
    session: Session | Connection, table: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert rows of ``table`` (unique on model_fp + request_key), skipping stored keys."""
    rows = sorted(rows, key=lambda r: (r["model_fp"], r["request_key"]))
    insert = _dialect_insert(session)
    if insert is None:
        _fallback(session, rows, replace_errors=False, table=table)
        return
    for i in range(0, len(rows), _ROWS):
        stmt = (
            insert(table)
            .values(list(rows[i : i + _ROWS]))
            .on_conflict_do_nothing(index_elements=_KEY)
        )
        session.execute(stmt)


def _fallback(
    session: Session | Connection,
    rows: Sequence[dict[str, Any]],
    *,
    replace_errors: bool,
    table: type[Base] = GenerationRow,
) -> None:
    for row in rows:
        try:
            with session.begin_nested():
                session.execute(sql_insert(table).values(**row))
        except IntegrityError:
            if replace_errors:
                session.execute(
                    update(GenerationRow)
                    .where(
                        and_(
                            GenerationRow.model_fp == row["model_fp"],
                            GenerationRow.request_key == row["request_key"],
                            GenerationRow.error.is_not(None),
                        )
                    )
                    .values(**{k: v for k, v in row.items() if k not in _KEY})
                )
