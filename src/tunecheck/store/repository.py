"""The run store's repository: :class:`Store` reads and writes runs, contenders, examples,
the generation and log-likelihood caches, outputs, scores and training points.

Every generation is committed the moment it is produced. Several processes may share
one store: cache writes are insert-or-ignore / upsert on the cache key. Reads return
the typed rows of :mod:`tunecheck.store.rows`. Open a store with
:func:`tunecheck.store.open_store`.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import defer, sessionmaker

from tunecheck.errors import TunecheckError
from tunecheck.examples import Example
from tunecheck.models.base import Generation, LoglikelihoodResult
from tunecheck.store.liveness import STALE_AFTER, host_name, process_alive, process_start
from tunecheck.store.rows import ContenderRecord, OutputRecord, RunDetail, RunRecord, TrainingPoint
from tunecheck.store.schema import (
    ContenderRow,
    ExampleRow,
    GenerationRow,
    LoglikelihoodRow,
    OutputRow,
    RunRow,
    ScoreRow,
    TrainingPointRow,
    utcnow,
)
from tunecheck.store.upsert import insert_ignore, upsert_generations

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import CursorResult

_CHUNK = 500


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class Store:
    """Typed access to the run store. Create with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self._session = sessionmaker(engine, expire_on_commit=False)

    # ------------------------------------------------------------------ cache
    def get_generations(self, model_fp: str, keys: Sequence[str]) -> dict[str, Generation]:
        """Cached successful generations for ``keys`` (errors are not cache hits)."""
        found: dict[str, Generation] = {}
        with self._session() as s:
            for i in range(0, len(keys), _CHUNK):
                chunk = list(keys[i : i + _CHUNK])
                rows = s.scalars(
                    select(GenerationRow).where(
                        GenerationRow.model_fp == model_fp,
                        GenerationRow.request_key.in_(chunk),
                        GenerationRow.error.is_(None),
                    )
                )
                for r in rows:
                    gen = Generation(
                        texts=list(r.texts),
                        prompt_tokens=r.prompt_tokens,
                        completion_tokens=r.completion_tokens,
                        cached=True,
                    )
                    if r.meta and _has_meta():
                        gen.meta = dict(r.meta)
                    found[r.request_key] = gen
        return found

    def put_generation(
        self, model_fp: str, key: str, request: dict[str, Any] | None, generation: Generation
    ) -> None:
        """Write one generation now (an error never overwrites a stored answer)."""
        self.put_generations(model_fp, [(key, request, generation)])

    def put_generations(
        self, model_fp: str, items: Iterable[tuple[str, dict[str, Any] | None, Generation]]
    ) -> None:
        """Write several generations in one transaction.

        Idempotent and safe against other processes writing the same keys: a stored
        answer is kept (never replaced by an error or by another copy), a stored error
        is replaced.
        """
        rows: dict[str, dict[str, Any]] = {}
        now = utcnow()
        for key, request, gen in items:
            if key in rows and (gen.error is not None or rows[key]["error"] is None):
                continue  # the same key twice in one call: the first answer wins
            rows[key] = {
                "model_fp": model_fp,
                "request_key": key,
                "request": request,
                "texts": list(gen.texts),
                "meta": getattr(gen, "meta", None) or None,
                "error": gen.error,
                "prompt_tokens": gen.prompt_tokens,
                "completion_tokens": gen.completion_tokens,
                "created_at": now,
            }
        if not rows:
            return
        # a Core connection, not an ORM session: this runs once per HTTP answer
        with self.engine.begin() as conn:
            upsert_generations(conn, list(rows.values()))

    def get_loglikelihoods(
        self, model_fp: str, keys: Sequence[str]
    ) -> dict[str, LoglikelihoodResult]:
        found: dict[str, LoglikelihoodResult] = {}
        with self._session() as s:
            for i in range(0, len(keys), _CHUNK):
                rows = s.scalars(
                    select(LoglikelihoodRow).where(
                        LoglikelihoodRow.model_fp == model_fp,
                        LoglikelihoodRow.request_key.in_(list(keys[i : i + _CHUNK])),
                    )
                )
                for r in rows:
                    found[r.request_key] = LoglikelihoodResult(
                        logprob=r.logprob, is_greedy=r.is_greedy, n_tokens=r.n_tokens
                    )
        return found

    def put_loglikelihoods(
        self, model_fp: str, items: Iterable[tuple[str, dict[str, Any] | None, LoglikelihoodResult]]
    ) -> None:
        rows: dict[str, dict[str, Any]] = {}
        now = utcnow()
        for key, request, res in items:
            if res.error is None and key not in rows:
                rows[key] = {
                    "model_fp": model_fp,
                    "request_key": key,
                    "request": request,
                    "logprob": float(res.logprob),
                    "is_greedy": bool(res.is_greedy),
                    "n_tokens": int(res.n_tokens),
                    "created_at": now,
                }
        if not rows:
            return
        with self._session.begin() as s:
            insert_ignore(s, LoglikelihoodRow, list(rows.values()))

    def count_generations(self, model_fp: str | None = None) -> int:
        with self._session() as s:
            q = select(func.count()).select_from(GenerationRow)
            if model_fp:
                q = q.where(GenerationRow.model_fp == model_fp)
            return int(s.scalar(q) or 0)

    # ------------------------------------------------------------------- runs
    def create_run(
        self,
        *,
        name: str,
        spec_hash: str,
        spec_json: dict[str, Any] | None = None,
        spec_path: str | None = None,
        lock_hash: str | None = None,
        overrides: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Register a run in status ``running``; returns its id."""
        from tunecheck import __version__

        run_id = run_id or uuid.uuid4().hex[:12]
        commit = _git_commit()  # a subprocess: before the clock is read, so created <= heartbeat
        now = utcnow()
        with self._session.begin() as s:
            s.add(
                RunRow(
                    host=host_name(),
                    pid=os.getpid(),
                    pid_started=process_start(),
                    created_at=now,
                    heartbeat_at=now,
                    id=run_id,
                    name=name,
                    spec_hash=spec_hash,
                    spec_json=spec_json,
                    spec_path=spec_path,
                    lock_hash=lock_hash,
                    tool_version=__version__,
                    git_commit=commit,
                    overrides=overrides or None,
                )
            )
        return run_id

    def add_contender(
        self,
        run_id: str,
        *,
        name: str,
        model_ref: str,
        model_fingerprint: str,
        prompt_fingerprint: str,
        role: str,
    ) -> None:
        with self._session.begin() as s:
            s.add(
                ContenderRow(
                    run_id=run_id,
                    name=name,
                    model_ref=model_ref,
                    model_fingerprint=model_fingerprint,
                    prompt_fingerprint=prompt_fingerprint,
                    role=role,
                )
            )

    def add_examples(self, run_id: str, task: str, examples: Sequence[Example]) -> None:
        with self._session.begin() as s:
            s.add_all(
                ExampleRow(
                    run_id=run_id,
                    task=task,
                    example_id=e.id,
                    input=e.input,
                    reference=_jsonable(e.reference),
                    label=e.label,
                    slices=list(e.slices) or None,
                )
                for e in examples
            )

    def put_outputs(
        self,
        run_id: str,
        contender: str,
        task: str,
        rows: Iterable[tuple[str, str, str, Generation]],
    ) -> None:
        """Link a run's (contender, task, example) to the generations it used.

        ``rows`` are ``(example_id, model_fp, request_key, generation)``.
        """
        with self._session.begin() as s:
            s.execute(
                delete(OutputRow).where(
                    OutputRow.run_id == run_id,
                    OutputRow.contender == contender,
                    OutputRow.task == task,
                )
            )
            s.add_all(
                OutputRow(
                    run_id=run_id,
                    contender=contender,
                    task=task,
                    example_id=ex_id,
                    model_fp=fp,
                    request_key=key,
                    text=None if gen.error else gen.text,
                    error=gen.error,
                )
                for ex_id, fp, key, gen in rows
            )

    def outputs(self, run_id: str, task: str | None = None) -> list[OutputRecord]:
        """What each contender produced for each example of ``run_id`` (one ``task`` or all)."""
        with self._session() as s:
            q = select(OutputRow).where(OutputRow.run_id == run_id)
            if task is not None:
                q = q.where(OutputRow.task == task)
            return [
                OutputRecord(
                    contender=r.contender,
                    task=r.task,
                    example_id=r.example_id,
                    text=r.text,
                    error=r.error,
                )
                for r in s.scalars(q.order_by(OutputRow.id))
            ]

    def put_scores(
        self,
        run_id: str,
        contender: str,
        task: str,
        metric: str,
        scores: Iterable[tuple[str, float]],
    ) -> None:
        with self._session.begin() as s:
            s.execute(
                delete(ScoreRow).where(
                    ScoreRow.run_id == run_id,
                    ScoreRow.contender == contender,
                    ScoreRow.task == task,
                    ScoreRow.metric == metric,
                )
            )
            s.add_all(
                ScoreRow(
                    run_id=run_id,
                    contender=contender,
                    task=task,
                    metric=metric,
                    example_id=i,
                    value=float(v),
                )
                for i, v in scores
            )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        verdict: str | None = None,
        result: dict[str, Any] | BaseModel | None = None,
        error: str | None = None,
    ) -> None:
        """Mark ``run_id`` finished; ``result`` (a ``RunResult`` or its JSON dict) is stored."""
        if result is not None and not isinstance(result, dict):
            result = result.model_dump(mode="json")
        values: dict[str, Any] = {
            "status": status,
            "finished_at": utcnow(),
            "verdict": verdict,
            "error": error,
        }
        if result is not None:
            values["result_json"] = result
        # one UPDATE, no read first: nothing for another writer to slip in between
        with self._session.begin() as s:
            # an UPDATE yields a CursorResult; Session.execute is typed for any statement
            done = cast(
                "CursorResult[Any]",
                s.execute(update(RunRow).where(RunRow.id == run_id).values(**values)),
            )
            if not done.rowcount:
                raise TunecheckError(f"no run {run_id!r} in the store", where=self.url)

    def heartbeat(self, run_id: str) -> None:
        """Record that the process running ``run_id`` is still alive."""
        with self._session.begin() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=utcnow()))

    def mark_dead_runs(self) -> list[str]:
        """Mark ``running`` runs whose process is gone as ``interrupted``; returns their ids.

        Same host: the recorded pid no longer runs (or now belongs to a process that
        started at another time). Other hosts, and runs from before liveness was
        recorded: no heartbeat for :data:`~tunecheck.store.liveness.STALE_AFTER` seconds.
        """
        here = host_name()
        stale = utcnow() - timedelta(seconds=STALE_AFTER)
        with self._session() as s:
            running = list(s.scalars(select(RunRow).where(RunRow.status == "running")))
        dead: dict[str, str] = {}
        for r in running:
            if r.host == here and r.pid:
                if not process_alive(r.pid, r.pid_started):
                    dead[r.id] = f"its process (pid {r.pid}) ended without finishing the run"
            elif (r.heartbeat_at or r.created_at) < stale:
                where = f" on {r.host}" if r.host else ""
                dead[r.id] = f"no sign of life from its process{where} for {STALE_AFTER:g} s"
        for run_id, why in dead.items():
            with self._session.begin() as s:
                s.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status == "running")
                    .values(
                        status="interrupted",
                        finished_at=utcnow(),
                        error=f"interrupted: {why} (killed?); run the same spec again to "
                        "resume, stored answers are reused",
                    )
                )
        return list(dead)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first."""
        with self._session() as s:
            # a listing needs none of the big JSON columns (a result holds every example)
            rows = s.scalars(
                select(RunRow)
                .options(defer(RunRow.result_json), defer(RunRow.spec_json))
                .order_by(RunRow.created_at.desc())
                .limit(limit)
            )
            return [RunRecord(**_run_fields(r)) for r in rows]

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of the run ``run_id`` names (an id or a unique prefix), reading only
        ids, never a stored result (megabytes for a big run).

        Raises :class:`~tunecheck.errors.TunecheckError` for an unknown id or an
        ambiguous prefix.
        """
        with self._session() as s:
            if s.scalar(select(RunRow.id).where(RunRow.id == run_id)) is not None:
                return run_id
            matches = list(
                s.scalars(select(RunRow.id).where(RunRow.id.startswith(run_id)).limit(2))
            )
        if len(matches) != 1:
            raise TunecheckError(
                f"no run {run_id!r} in the store"
                if not matches
                else f"run id prefix {run_id!r} is ambiguous",
                where=self.url,
                hint="list runs with `tunecheck runs`",
            )
        return matches[0]

    def get_run(self, run_id: str) -> RunDetail:
        """A run with its contenders and stored result; unique id prefixes are accepted.

        Raises :class:`~tunecheck.errors.TunecheckError` for an unknown id or an
        ambiguous prefix.
        """
        full = self.resolve_run_id(run_id)
        with self._session() as s:
            row = s.get(RunRow, full)
            if row is None:  # deleted between the two reads
                raise TunecheckError(f"no run {run_id!r} in the store", where=self.url)
            contenders = s.scalars(
                select(ContenderRow).where(ContenderRow.run_id == row.id).order_by(ContenderRow.id)
            )
            return RunDetail(
                **_run_fields(row),
                spec=row.spec_json,
                spec_path=row.spec_path,
                overrides=row.overrides,
                result=row.result_json,
                error=row.error,
                contenders=tuple(
                    ContenderRecord(
                        name=c.name,
                        model=c.model_ref,
                        model_fingerprint=c.model_fingerprint,
                        prompt_fingerprint=c.prompt_fingerprint,
                        role=c.role,
                    )
                    for c in contenders
                ),
            )

    # ------------------------------------------------------------ training
    def put_training_point(
        self, run_name: str, step: int, checkpoint: str | None, metrics: dict[str, float]
    ) -> None:
        with self._session.begin() as s:
            s.add(
                TrainingPointRow(
                    run_name=run_name, step=int(step), checkpoint=checkpoint, metrics=dict(metrics)
                )
            )

    def training_points(self, run_name: str) -> list[TrainingPoint]:
        """The evaluations logged during training run ``run_name``, by step."""
        with self._session() as s:
            rows = s.scalars(
                select(TrainingPointRow)
                .where(TrainingPointRow.run_name == run_name)
                .order_by(TrainingPointRow.step, TrainingPointRow.id)
            )
            return [
                TrainingPoint(
                    step=r.step,
                    checkpoint=r.checkpoint,
                    metrics=dict(r.metrics),
                    created_at=r.created_at,
                )
                for r in rows
            ]

    def close(self) -> None:
        self.engine.dispose()


def _has_meta() -> bool:
    return "meta" in getattr(Generation, "__dataclass_fields__", {})


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _run_fields(r: RunRow) -> dict[str, Any]:
    """The :class:`RunRecord` fields of a runs-table row."""
    return {
        "id": r.id,
        "name": r.name,
        "status": r.status,
        "verdict": r.verdict,
        # a datetime on every backend; str() covers a value some driver hands back as text
        "created_at": _iso(r.created_at)
        if isinstance(r.created_at, datetime)
        else str(r.created_at),
        "finished_at": _iso(r.finished_at),
        "spec_hash": r.spec_hash,
        "lock_hash": r.lock_hash,
        "tool_version": r.tool_version,
        "git_commit": r.git_commit,
        "host": r.host,
        "pid": r.pid,
        "heartbeat_at": _iso(r.heartbeat_at),
    }


__all__ = ["Store"]
