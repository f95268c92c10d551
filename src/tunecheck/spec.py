"""The eval spec, ``tunecheck.yaml``: contenders, tasks, probes, thresholds.

Validated with pydantic. Unknown keys and type errors are reported with the file,
line and field, and a suggestion where one is obvious (a misspelt key).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from tunecheck.errors import SpecError
from tunecheck.prompts import FewShot, Prompt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FewShotSpec(_Strict):
    input: str
    output: str


class PromptSpec(_Strict):
    """How a contender is prompted. ``template`` is Jinja2 over the example fields."""

    system: str | None = None
    few_shot: list[FewShotSpec] = Field(default_factory=list)
    template: str = "{{ input }}"
    chat: bool = True

    def build(self) -> Prompt:
        return Prompt(
            system=self.system,
            few_shot=tuple(FewShot(s.input, s.output) for s in self.few_shot),
            template=self.template,
            chat=self.chat,
        )


class GenerationSpec(_Strict):
    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    stop: list[str] = Field(default_factory=list)


class ContenderSpec(_Strict):
    """A named model + prompt: ``base``, ``base+prompt``, ``finetuned``..."""

    name: str
    model: str
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    options: dict[str, Any] = Field(
        default_factory=dict, description="backend options (device, dtype, batch_size...)"
    )


class FieldMap(_Strict):
    """Which columns of the data file hold what."""

    input: str = "input"
    reference: str | None = "reference"
    label: str | None = None
    id: str | None = "id"
    slices: str | list[str] | None = None


class ParserSpec(_Strict):
    """How generated text becomes a prediction (see :mod:`tunecheck.metrics.parsers`)."""

    type: Literal["raw", "label", "json", "number", "regex"] = "raw"
    labels: list[str] | None = None
    pattern: str | None = None
    mode: Literal["exact", "first"] = "first"
    case_sensitive: bool = False


class TaskSpec(_Strict):
    """The task being fine-tuned for: the locked test data and how to score it."""

    name: str = "task"
    data: str
    lock: str | None = None
    split: str = "test"
    fields: FieldMap = Field(default_factory=FieldMap)
    parser: ParserSpec = Field(default_factory=ParserSpec)
    metrics: list[str] = Field(default_factory=lambda: ["exact_match"])
    primary_metric: str | None = None
    json_schema: dict[str, Any] | None = None
    limit: int | None = Field(None, ge=1)
    allow_overlap: bool = False
    near_duplicate_threshold: float = Field(0.5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _primary(self) -> TaskSpec:
        if not self.metrics:
            raise ValueError("a task needs at least one metric")
        if self.primary_metric is None:
            self.primary_metric = self.metrics[0]
        elif self.primary_metric not in self.metrics:
            raise ValueError(
                f"primary_metric {self.primary_metric!r} is not one of metrics {self.metrics}"
            )
        return self


class ProbeSpec(_Strict):
    """A capability-regression probe: built-in generated, a benchmark file, or a user task."""

    name: str
    builtin: str | None = None
    path: str | None = None
    format: str | None = None
    n: int = Field(100, ge=1)
    mode: Literal["auto", "loglikelihood", "generate"] = "auto"
    metric: str | None = None
    fields: FieldMap | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _source(self) -> ProbeSpec:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("a probe needs exactly one of `builtin` or `path`")
        return self


class Thresholds(_Strict):
    """Relative probe drops: <= warn ok, warn..fail warning, >= fail failure."""

    warn: float = Field(0.05, ge=0.0, le=1.0)
    fail: float = Field(0.15, ge=0.0, le=1.0)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    min_gain: float = Field(
        0.0, ge=0.0, description="smallest task gain (absolute) worth deploying"
    )

    @model_validator(mode="after")
    def _order(self) -> Thresholds:
        if self.fail < self.warn:
            raise ValueError(f"fail ({self.fail}) must be >= warn ({self.warn})")
        return self


DEFAULT_PROBES: list[dict[str, Any]] = [
    {"name": "arithmetic", "builtin": "arithmetic"},
    {"name": "reasoning", "builtin": "reasoning"},
    {"name": "instructions", "builtin": "instructions"},
]


class Spec(_Strict):
    """A whole evaluation: who competes on what, and how the verdict is reached."""

    version: int = 1
    seed: int = 13
    store: str | None = None
    contenders: list[ContenderSpec] = Field(min_length=2)
    candidate: str | None = None
    tasks: list[TaskSpec] = Field(min_length=1)
    probes: list[ProbeSpec] | None = None
    thresholds: Thresholds = Field(default_factory=Thresholds)
    bootstrap: int = Field(10_000, ge=100)
    guard_examples: int = Field(4, ge=0)
    # where the spec came from and the line of each field: pre-flight problems name them
    _source: str = PrivateAttr(default="<spec>")
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    def locate(self, *path: Any) -> str:
        """``file:line`` of the field at ``path`` (its nearest written parent), for messages."""
        for i in range(len(path), -1, -1):
            line = self._lines.get(tuple(path[:i]))
            if line is not None:
                return f"{self._source}:{line}"
        return self._source

    @model_validator(mode="before")
    @classmethod
    def _task_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "task" in data:
            data = dict(data)
            if "tasks" in data:
                raise ValueError("give either `task` or `tasks`, not both")
            data["tasks"] = [data.pop("task")]
        return data

    @field_validator("contenders")
    @classmethod
    def _unique_names(cls, value: list[ContenderSpec]) -> list[ContenderSpec]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"contender names must be unique; repeated: {dupes}")
        return value

    @model_validator(mode="after")
    def _candidate(self) -> Spec:
        names = [c.name for c in self.contenders]
        if self.candidate is None:
            self.candidate = names[-1]
        elif self.candidate not in names:
            close = difflib.get_close_matches(self.candidate, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"candidate {self.candidate!r} is not a contender{hint}; contenders: {names}"
            )
        return self

    @property
    def baselines(self) -> list[ContenderSpec]:
        return [c for c in self.contenders if c.name != self.candidate]

    @property
    def candidate_spec(self) -> ContenderSpec:
        return next(c for c in self.contenders if c.name == self.candidate)

    def probe_specs(self) -> list[ProbeSpec]:
        """The declared probes, or the built-in generated set when none are declared."""
        if self.probes is None:
            return [ProbeSpec(**p) for p in DEFAULT_PROBES]
        return self.probes

    def fingerprint(self) -> str:
        return hashlib.sha256(
            json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()


# --------------------------------------------------------------------------- loading


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key and sequence item."""


def _positions(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _positions(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _positions(item, (*path, i), out)


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at ``loc`` (for 'did you mean' suggestions)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
            for inner in getattr(candidate, "__args__", ()):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    current = inner
                    break
    return list(getattr(current, "model_fields", {}))


def parse_spec(text: str, *, source: str = "<spec>", base_dir: Path | None = None) -> Spec:
    """Validate spec text; errors name ``source``, the line and the field."""
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise SpecError(f"not valid YAML: {getattr(err, 'problem', err)}", where=where) from None
    if not isinstance(data, dict):
        raise SpecError(
            "the spec must be a mapping of keys (contenders, task, probes...)", where=source
        )
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _positions(node, (), lines)
    if "task" in data and "tasks" not in data:
        # keep error locations pointing at the `task:` key the user wrote
        for key, line in list(lines.items()):
            if key and key[0] == "task":
                lines[("tasks", 0, *key[1:])] = line
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        messages = []
        for e in err.errors():
            loc = tuple(e["loc"])
            line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
            field = ".".join(str(p) for p in loc) or "(top level)"
            where = f"{source}:{line}" if line else source
            msg = e["msg"]
            if e["type"] == "extra_forbidden":
                known = _known_fields(Spec, loc)
                close = difflib.get_close_matches(str(loc[-1]), known, n=1)
                msg = f"unknown key {loc[-1]!r}" + (
                    f" (did you mean {close[0]!r}?)" if close else ""
                )
                if known:
                    msg += f"; allowed here: {', '.join(known)}"
            messages.append(f"{where}: field `{field}`: {msg}")
        raise SpecError("invalid spec\n  " + "\n  ".join(messages), where=None) from None
    spec._source = source
    spec._lines = lines
    if base_dir is not None:
        _resolve_paths(spec, base_dir)
    return spec


def _resolve_paths(spec: Spec, base_dir: Path) -> None:
    """Make data/lock/probe paths relative to the spec file's folder, as users expect."""

    def fix(p: str | None) -> str | None:
        if p is None or "://" in p:
            return p
        path = Path(p).expanduser()
        return str(path if path.is_absolute() else (base_dir / path))

    if spec.store and spec.store.startswith("sqlite:///") and spec.store != "sqlite:///:memory:":
        # a relative SQLite path in a spec means "next to the spec", wherever tunecheck runs from
        spec.store = "sqlite:///" + (fix(spec.store.removeprefix("sqlite:///")) or "")
    for task in spec.tasks:
        task.data = fix(task.data) or task.data
        task.lock = fix(task.lock)
    for probe in spec.probes or []:
        probe.path = fix(probe.path)
    for contender in spec.contenders:
        backend, sep, target = contender.model.partition(":")
        if sep and backend in {"hf", "hf-classifier"}:
            contender.model = f"{backend}:" + _resolve_model_target(target, base_dir)


# `base+adapter=path`: split only before `+key=`, so a `+` inside a path survives
_MODEL_PARTS = re.compile(r"\+(?=[A-Za-z_]+=)")


def _local_model_path(value: str, base_dir: Path) -> str:
    """A model or adapter path resolved like a data path, or ``value`` unchanged.

    ``~`` and absolute paths are local by construction; ``./``/``../`` say "relative to
    the spec". Any other relative name is local only if it exists next to the spec:
    otherwise it is a hub id (``org/name``) or a path relative to the working folder,
    and is kept exactly as written.
    """
    if not value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    beside = base_dir / path
    if value.startswith(("./", "../")) or beside.exists():
        return str(beside)
    return value


def _resolve_model_target(target: str, base_dir: Path) -> str:
    """Resolve the base and every ``adapter=`` of an ``hf:`` target independently."""
    base, *extras = _MODEL_PARTS.split(target)
    fixed = [_local_model_path(base, base_dir)]
    for extra in extras:
        key, _, value = extra.partition("=")
        fixed.append(f"adapter={_local_model_path(value, base_dir)}" if key == "adapter" else extra)
    return "+".join(fixed)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; relative paths inside are resolved against its folder."""
    path = Path(path)
    if not path.exists():
        raise SpecError(
            "spec file not found",
            where=str(path),
            hint="create one with `tunecheck init`, or run `tunecheck demo` to get an example",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"not UTF-8 text (byte {err.start})", where=str(path)) from None
    return parse_spec(text, source=str(path), base_dir=path.resolve().parent)
