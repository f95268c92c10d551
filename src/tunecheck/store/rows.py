"""Typed rows the run store returns: what :class:`~tunecheck.store.Store` reads, as frozen dataclasses.

Read them by attribute (``run.status``). ``run["status"]`` also works, for code written
when the store returned dicts; :meth:`to_dict` gives the JSON-ready mapping
``tunecheck show --json`` prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class _ByKey:
    """``row["field"]`` reads the attribute; an unknown key is a ``KeyError``, as on a dict."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in _field_names(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict (nested rows as dicts, tuples as lists)."""
        return {name: _plain(getattr(self, name)) for name in _field_names(type(self))}


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _plain(value: Any) -> Any:
    if isinstance(value, _ByKey):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ContenderRecord(_ByKey):
    """One contender of a stored run."""

    name: str
    #: the model reference as the spec gave it (``hf:...``, ``openai:...``)
    model: str
    model_fingerprint: str
    prompt_fingerprint: str
    #: ``baseline`` or ``candidate``
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord(_ByKey):
    """A run as :meth:`Store.list_runs <tunecheck.store.Store.list_runs>` lists it.

    Times are UTC, ISO 8601 to the second (``2026-01-02T03:04:05``), as shown and printed.
    """

    id: str
    name: str
    #: ``running``, ``completed``, ``failed``, ``interrupted``
    status: str
    verdict: str | None
    created_at: str
    finished_at: str | None
    spec_hash: str
    lock_hash: str | None
    tool_version: str
    git_commit: str | None
    #: the machine and process that ran (or runs) it, and its last sign of life
    host: str | None
    pid: int | None
    heartbeat_at: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDetail(RunRecord):
    """A run as :meth:`Store.get_run <tunecheck.store.Store.get_run>` returns it: the
    summary plus the spec, the stored result (``RunResult`` JSON) and the contenders."""

    spec: dict[str, Any] | None
    spec_path: str | None
    overrides: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    contenders: tuple[ContenderRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRecord(_ByKey):
    """The text a contender produced for one example of a run (``text`` is None on error)."""

    contender: str
    task: str
    example_id: str
    text: str | None
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingPoint(_ByKey):
    """One evaluation during training (``tunecheck.training`` callback)."""

    step: int
    checkpoint: str | None
    metrics: dict[str, float]
    created_at: datetime


__all__ = ["ContenderRecord", "OutputRecord", "RunDetail", "RunRecord", "TrainingPoint"]
