"""The settings the scoring layers read: parser, field map, thresholds, code settings.

Plain frozen dataclasses, independent of the YAML spec: :mod:`tunecheck.spec` validates
what a user wrote (pydantic, with ``file:line`` errors) and converts it with
``.to_core()``; everything below the spec (data loading, metrics, scoring, the verdict)
takes these types. The ``as_*`` functions accept a core object, ``None`` (the
defaults), a mapping, or any object with the same attribute names (a spec model), so a
caller may pass either layer's object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from tunecheck.errors import SpecError

__all__ = [
    "CodeSettings",
    "FieldMap",
    "FieldMapLike",
    "InvalidSetting",
    "Parser",
    "ParserLike",
    "Thresholds",
    "as_code_settings",
    "as_field_map",
    "as_parser",
    "as_thresholds",
]

ParserMode = Literal["exact", "first"]
CodeFormat = Literal["auto", "humaneval", "mbpp", "plain"]
CodeExtract = Literal["auto", "fenced", "completion", "raw"]


class ParserLike(Protocol):
    """What a parser argument must offer: a :class:`Parser` or the spec's ``ParserSpec``."""

    @property
    def type(self) -> str: ...
    @property
    def labels(self) -> Sequence[str] | None: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def mode(self) -> str: ...
    @property
    def case_sensitive(self) -> bool: ...


class FieldMapLike(Protocol):
    """What a field-map argument must offer: a :class:`FieldMap` or the spec's ``FieldMap``
    (converted on entry by :func:`as_field_map`, which keeps which fields were given)."""

    @property
    def input(self) -> str: ...
    @property
    def reference(self) -> str | None: ...
    @property
    def label(self) -> str | None: ...
    @property
    def id(self) -> str | None: ...
    @property
    def slices(self) -> str | Sequence[str] | None: ...


class InvalidSetting(SpecError, ValueError):
    """A core setting out of range: a :class:`SpecError` for the CLI, a ``ValueError`` for
    Python callers and for pydantic (a stored result with bad thresholds fails validation)."""


def _strings(value: Iterable[str] | str | None) -> str | tuple[str, ...] | None:
    """A list given for a sequence field (from YAML or a caller) as an immutable tuple."""
    if value is None or isinstance(value, str):
        return value
    return tuple(value)


@dataclass(frozen=True)
class Parser:
    """How generated text becomes a prediction (see :mod:`tunecheck.metrics.parsers`).

    ``type``: ``raw`` (the text), ``label`` (one of ``labels``), ``json``, ``number``
    (the last number) or ``regex`` (``pattern``'s first group, mapped to a label when
    ``labels`` are given). ``mode``: a label must be the whole answer (``exact``) or the
    first label found (``first``). An unknown type is reported when an output is parsed.
    """

    type: str = "raw"
    labels: tuple[str, ...] | None = None
    pattern: str | None = None
    mode: ParserMode = "first"
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.labels, str):
            raise InvalidSetting(
                f"parser labels must be a list of labels, not the string {self.labels!r}",
                where="task.parser.labels",
            )
        object.__setattr__(self, "labels", _strings(self.labels))
        if self.mode not in ("exact", "first"):
            raise InvalidSetting(
                f"parser mode must be 'exact' or 'first', not {self.mode!r}",
                where="task.parser.mode",
            )


_FIELD_NAMES = ("input", "reference", "label", "id", "slices")
_DEFAULTS: dict[str, Any] = {
    "input": "input",
    "reference": "reference",
    "label": None,
    "id": "id",
    "slices": None,
}
# marks an argument the caller did not pass (None is a meaningful value: "no such column")
_DEFAULT: Any = object()


@dataclass(frozen=True, init=False)
class FieldMap:
    """Which columns of a data file hold what.

    ``given`` names the fields set explicitly (by the caller or in the spec): an
    explicitly mapped ``id`` or ``reference`` column must exist, while the defaults
    (``id``, ``reference``) are used only when the file has them.
    """

    input: str
    reference: str | None
    label: str | None
    id: str | None
    slices: str | tuple[str, ...] | None
    given: frozenset[str]

    def __init__(
        self,
        input: str = _DEFAULT,
        reference: str | None = _DEFAULT,
        label: str | None = _DEFAULT,
        id: str | None = _DEFAULT,
        slices: str | Iterable[str] | None = _DEFAULT,
        *,
        given: Iterable[str] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "input": input,
            "reference": reference,
            "label": label,
            "id": id,
            "slices": slices,
        }
        # what was passed counts as given, unless ``given`` says otherwise (a converted spec)
        passed = {name for name, value in values.items() if value is not _DEFAULT}
        explicit = frozenset(passed if given is None else given)
        unknown = explicit - set(_FIELD_NAMES)
        if unknown:
            raise TypeError(f"FieldMap.given names unknown field(s) {sorted(unknown)}")
        for name in _FIELD_NAMES:
            value = values[name] if values[name] is not _DEFAULT else _DEFAULTS[name]
            object.__setattr__(self, name, _strings(value) if name == "slices" else value)
        object.__setattr__(self, "given", explicit)
        if not isinstance(self.input, str) or not self.input:
            raise InvalidSetting(
                f"the input field must be a column name, not {self.input!r}", where="fields.input"
            )

    def updated(self, **changes: Any) -> FieldMap:
        """A copy with ``changes`` applied; the changed fields count as explicitly given."""
        unknown = set(changes) - set(_FIELD_NAMES)
        if unknown:
            raise TypeError(f"FieldMap has no field(s) {sorted(unknown)}")
        values = {name: getattr(self, name) for name in _FIELD_NAMES} | changes
        return FieldMap(**values, given=self.given | set(changes))


@dataclass(frozen=True)
class Thresholds:
    """Relative probe drops: <= ``warn`` ok, ``warn``..``fail`` warning, >= ``fail`` failure.

    ``alpha``: significance level of every test; ``min_gain``: the smallest task gain
    (absolute) worth deploying; ``max_error_share``: above this share of failed requests
    (any contender, any task) the run ends INCOMPLETE, without a verdict.
    """

    warn: float = 0.05
    fail: float = 0.15
    alpha: float = 0.05
    min_gain: float = 0.0
    max_error_share: float = 0.05

    def __post_init__(self) -> None:
        checks = (
            ("warn", 0.0 <= self.warn <= 1.0, "between 0 and 1"),
            ("fail", 0.0 <= self.fail <= 1.0, "between 0 and 1"),
            ("alpha", 0.0 < self.alpha < 1.0, "strictly between 0 and 1"),
            ("min_gain", self.min_gain >= 0.0, ">= 0"),
            ("max_error_share", 0.0 <= self.max_error_share <= 1.0, "between 0 and 1"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise InvalidSetting(
                    f"{name} must be {rule}, not {getattr(self, name)!r}",
                    where=f"thresholds.{name}",
                )
        if self.fail < self.warn:
            raise InvalidSetting(
                f"fail ({self.fail}) must be >= warn ({self.warn})", where="thresholds.fail"
            )


@dataclass(frozen=True)
class CodeSettings:
    """A code task's settings (see :class:`tunecheck.spec.CodeSpec` for their meaning)."""

    format: CodeFormat = "auto"
    extract: CodeExtract = "auto"
    timeout: float = 10.0
    memory_mb: int | None = 1024
    workers: int | None = None
    site_packages: bool = False
    show_tests: bool = True


_T = TypeVar("_T")


def _coerce(cls: type[_T], obj: Any) -> _T:
    if obj is None:
        return cls()
    if isinstance(obj, cls):
        return obj
    to_core = getattr(obj, "to_core", None)
    if callable(to_core):
        core = to_core()
        if isinstance(core, cls):
            return core
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if isinstance(obj, Mapping):
        return cls(**{k: v for k, v in obj.items() if k in names})
    return cls(**{k: getattr(obj, k) for k in names if hasattr(obj, k)})


def as_parser(obj: Any) -> Parser:
    """``obj`` as a :class:`Parser` (``None``: the raw parser)."""
    return _coerce(Parser, obj)


def as_thresholds(obj: Any) -> Thresholds:
    """``obj`` as :class:`Thresholds` (``None``: the defaults)."""
    return _coerce(Thresholds, obj)


def as_code_settings(obj: Any) -> CodeSettings:
    """``obj`` as :class:`CodeSettings` (``None``: the defaults)."""
    return _coerce(CodeSettings, obj)


def as_field_map(obj: Any) -> FieldMap:
    """``obj`` as a :class:`FieldMap` (``None``: the defaults, nothing explicitly given).

    An object with pydantic's ``model_fields_set`` keeps which fields were given.
    """
    if obj is None:
        return FieldMap()
    if isinstance(obj, FieldMap):
        return obj
    to_core = getattr(obj, "to_core", None)
    if callable(to_core):
        core = to_core()
        if isinstance(core, FieldMap):
            return core
    if isinstance(obj, Mapping):
        values = {k: v for k, v in obj.items() if k in _FIELD_NAMES}
        return FieldMap(**values)
    values = {k: getattr(obj, k) for k in _FIELD_NAMES if hasattr(obj, k)}
    given = getattr(obj, "model_fields_set", None)
    return FieldMap(**values, given=None if given is None else set(given) & set(_FIELD_NAMES))
