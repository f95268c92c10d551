"""The shadow log: every request through the proxy, written by one background thread.

The event loop never waits for the database: it puts small records on a queue and a
writer thread commits them in batches (one transaction per batch, SQLite in WAL
mode). A row is inserted when the request arrives and updated as each side answers,
so a killed proxy keeps every committed row and at worst loses the last ~50 ms.
"""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update

from tunecheck.shadow.payload import Answer, sha256
from tunecheck.store import open_store
from tunecheck.store.schema import ShadowRequestRow, ShadowSessionRow, utcnow

# declarative classes map one Table each; SQLAlchemy types __table__ as the wider FromClause
_REQUESTS = cast(Table, ShadowRequestRow.__table__)
_SESSIONS = cast(Table, ShadowSessionRow.__table__)
_SIDE_FIELDS = (
    "status",
    "latency_ms",
    "ttfb_ms",
    "prompt_tokens",
    "completion_tokens",
    "text",
    "sha256",
    "chars",
    "finish",
    "error",
)
_BATCH = 500


@dataclass
class SideResult:
    """One upstream call as the log keeps it."""

    status: int | None
    latency_ms: float
    ttfb_ms: float | None
    answer: Answer

    def columns(self, prefix: str, keep_content: bool) -> dict[str, Any]:
        text = self.answer.text
        return {
            f"{prefix}_status": self.status,
            f"{prefix}_latency_ms": round(self.latency_ms, 3),
            f"{prefix}_ttfb_ms": None if self.ttfb_ms is None else round(self.ttfb_ms, 3),
            f"{prefix}_prompt_tokens": self.answer.prompt_tokens,
            f"{prefix}_completion_tokens": self.answer.completion_tokens,
            f"{prefix}_text": text if keep_content else None,
            f"{prefix}_sha256": None if text is None else sha256(text),
            f"{prefix}_chars": None if text is None else len(text),
            f"{prefix}_finish": self.answer.finish_reason,
            f"{prefix}_error": self.answer.error,
        }


def _update_stmt(prefix: str) -> Any:
    cols: dict[str, Any] = {f"{prefix}_{f}": bindparam(f"{prefix}_{f}") for f in _SIDE_FIELDS}
    return update(_REQUESTS).where(_REQUESTS.c.id == bindparam("_id")).values(**cols)


class ShadowLog:
    """Writes sessions and requests to the run store from a background thread."""

    def __init__(self, store_url: str | None, *, keep_content: bool = True) -> None:
        self.store = open_store(store_url)
        self.engine = self.store.engine
        self.keep_content = keep_content
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="shadow-log", daemon=True)
        self._updates = {
            "prod": _update_stmt("prod"),
            "cand": _update_stmt("cand"),
            "mirror": update(_REQUESTS)
            .where(_REQUESTS.c.id == bindparam("_id"))
            .values(mirror=bindparam("mirror")),
        }
        self.written = 0
        self.failed: str | None = None
        self._thread.start()

    # ---------------------------------------------------------------- writing
    def open_session(
        self, *, mode: str, production_url: str, candidate_url: str, config: dict[str, Any]
    ) -> str:
        """Record a proxy session (synchronously, before serving) and return its id."""
        from tunecheck import __version__

        session_id = uuid.uuid4().hex[:12]
        with self.engine.begin() as conn:
            conn.execute(
                insert(_SESSIONS).values(
                    id=session_id,
                    started_at=utcnow(),
                    mode=mode,
                    production_url=production_url,
                    candidate_url=candidate_url,
                    config=config,
                    tool_version=__version__,
                )
            )
        self.session_id = session_id
        return session_id

    def begin(self, row: dict[str, Any]) -> None:
        """A request arrived (``row`` holds the ``shadow_requests`` columns known now)."""
        row.setdefault("session_id", self.session_id)
        row.setdefault("created_at", utcnow())
        row.setdefault("stream", False)
        self._queue.put(("insert", row))

    def finish(self, request_id: str, side: str, result: SideResult) -> None:
        """``side`` ("prod" or "cand") of ``request_id`` answered (or failed)."""
        values = result.columns(side, self.keep_content)
        values["_id"] = request_id
        self._queue.put((side, values))

    def mark_mirror(self, request_id: str, status: str) -> None:
        """What happened to the mirror copy: ``dropped`` (queue full) or ``done``."""
        self._queue.put(("mirror", {"_id": request_id, "mirror": status}))

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything queued, then mark the session ended."""
        self._queue.put(None)
        self._thread.join(timeout)
        if getattr(self, "session_id", None):
            with self.engine.begin() as conn:
                conn.execute(
                    update(_SESSIONS)
                    .where(_SESSIONS.c.id == self.session_id)
                    .values(ended_at=utcnow())
                )

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch = []
            while item is not None:
                batch.append(item)
                if len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        # an update of a row inserted in the same batch is folded into the insert:
        # most requests finish within one batch window, so most need one statement
        fresh: dict[str, dict[str, Any]] = {}
        updates: dict[str, list[dict[str, Any]]] = {"prod": [], "cand": [], "mirror": []}
        for kind, row in batch:
            if kind == "insert":
                fresh[row["id"]] = dict(row)
            elif row["_id"] in fresh:
                fresh[row["_id"]].update({k: v for k, v in row.items() if k != "_id"})
            else:
                updates[kind].append(row)
        try:
            with self.engine.begin() as conn:
                # rows differ in which optional columns they carry: one executemany per shape
                shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for row in fresh.values():
                    shapes.setdefault(tuple(sorted(row)), []).append(row)
                for rows in shapes.values():
                    conn.execute(insert(_REQUESTS), rows)
                for kind, rows in updates.items():
                    if rows:
                        conn.execute(self._updates[kind], rows)
            self.written += len(batch)
        except Exception as err:  # the proxy must keep serving even if the log breaks
            self.failed = f"{type(err).__name__}: {err}"


# -------------------------------------------------------------------- reading


def load_requests(
    store_url: str | None, session: str | None = None, *, latest: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sessions, request rows) from the store; ``session`` is an id or unique prefix.

    Without ``session``: the latest session when ``latest``, else every session.
    """
    from tunecheck.errors import TunecheckError

    store = open_store(store_url)
    with store.engine.connect() as conn:
        sessions = [
            dict(r._mapping)
            for r in conn.execute(select(_SESSIONS).order_by(_SESSIONS.c.started_at.desc()))
        ]
        if not sessions:
            raise TunecheckError(
                "no shadow sessions in the store",
                where=store.url,
                hint="start the proxy with `tunecheck shadow --production URL --candidate URL`",
            )
        if session:
            chosen = [s for s in sessions if s["id"].startswith(session)]
            if len(chosen) != 1:
                raise TunecheckError(
                    f"no shadow session {session!r}"
                    if not chosen
                    else f"session prefix {session!r} is ambiguous",
                    where=store.url,
                    hint="known sessions: " + ", ".join(s["id"] for s in sessions[:10]),
                )
        else:
            chosen = sessions[:1] if latest else sessions
        ids = [s["id"] for s in chosen]
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(_REQUESTS)
                .where(_REQUESTS.c.session_id.in_(ids))
                .order_by(_REQUESTS.c.created_at, _REQUESTS.c.id)
            )
        ]
    for s in chosen:
        for key in ("started_at", "ended_at"):
            if isinstance(s.get(key), datetime):
                s[key] = s[key].isoformat(timespec="seconds")
    return chosen, rows


__all__ = ["ShadowLog", "SideResult", "load_requests"]
