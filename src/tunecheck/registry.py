"""A tiny name -> object registry shared by metrics, backends and probes.

A new metric/backend/probe is one decorated function or class:

    @metric("accuracy")
    def accuracy(...): ...

Installed packages extend a registry through an entry-point group
(``tunecheck.metrics``, ``tunecheck.backends``, ``tunecheck.probes``): each entry point
names a module (or an object in one) whose import runs the decorators. They are
loaded the first time a name is not found or the names are listed, so a plain
``import tunecheck`` stays fast.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tunecheck.errors import TunecheckError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind, with a helpful error for unknown names."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._families: list[tuple[re.Pattern[str], Callable[[re.Match[str]], T], str]] = []
        self._entry_points_loaded = entry_point_group is None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        assert self.entry_point_group is not None
        for ep in importlib.metadata.entry_points(group=self.entry_point_group):
            try:
                ep.load()  # importing runs the plugin's decorators
            except Exception as err:  # a broken plugin must not hide the built-ins
                warnings.warn(
                    f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {err}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorate

    def register_family(
        self, pattern: str, example: str
    ) -> Callable[[Callable[[re.Match[str]], T]], Callable[[re.Match[str]], T]]:
        """Register names matching ``pattern`` (e.g. ``pass@(\\d+)``): the factory gets the match."""

        def decorate(factory: Callable[[re.Match[str]], T]) -> Callable[[re.Match[str]], T]:
            self._families.append((re.compile(pattern), factory, example))
            return factory

        return decorate

    def get(self, name: str, *, where: str | None = None) -> T:
        if name not in self._items:
            self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            for pattern, factory, _ in self._families:
                if m := pattern.fullmatch(name):
                    return factory(m)
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            known = (
                ", ".join([*sorted(self._items), *(e for _, _, e in self._families)]) or "(none)"
            )
            raise TunecheckError(
                f"unknown {self.kind} {name!r}; known: {known}", where=where, hint=hint
            ) from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._load_entry_points()
        return name in self._items or (
            isinstance(name, str) and any(p.fullmatch(name) for p, _, _ in self._families)
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
