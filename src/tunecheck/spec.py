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
from typing import TYPE_CHECKING, Any, Literal

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

from tunecheck import core
from tunecheck.errors import SpecError
from tunecheck.judge.config import JudgeSpec, check_task_metrics
from tunecheck.probe_rules import DEFAULT_PROBE_N
from tunecheck.prompts import FewShot, Prompt

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tunecheck.examples import Example
    from tunecheck.task import Task


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

    def to_core(self) -> core.FieldMap:
        """The core :class:`~tunecheck.core.FieldMap`, remembering which fields were written."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return core.FieldMap(**values, given=self.model_fields_set)


class ParserSpec(_Strict):
    """How generated text becomes a prediction (see :mod:`tunecheck.metrics.parsers`)."""

    type: str = Field(
        "raw",
        description="a registered parser type: raw, label, json, number, regex, or a plugin's",
    )
    labels: list[str] | None = None
    pattern: str | None = None
    mode: Literal["exact", "first"] = "first"
    case_sensitive: bool = False

    def to_core(self) -> core.Parser:
        """The core :class:`~tunecheck.core.Parser` the metrics read."""
        return core.Parser(**{name: getattr(self, name) for name in type(self).model_fields})


class CodeSpec(_Strict):
    """A code task: problems with tests, scored by running them (``pass@k`` metrics).

    ``format``: ``auto`` (from the columns), ``humaneval``, ``mbpp`` or ``plain``; the
    field mapping follows the format unless ``fields`` is given. ``extract``: how code
    is taken from an output (see :mod:`tunecheck.code.extract`). The rest are
    :class:`tunecheck.sandbox.Limits` and its worker count (default: the core count).
    """

    format: Literal["auto", "humaneval", "mbpp", "plain"] = "auto"
    extract: Literal["auto", "fenced", "completion", "raw"] = "auto"
    timeout: float = Field(10.0, gt=0.0, description="wall-clock seconds per program")
    memory_mb: int | None = Field(1024, ge=64, description="address-space limit per program")
    workers: int | None = Field(None, ge=1)
    site_packages: bool = Field(False, description="let programs import installed packages")
    show_tests: bool = Field(True, description="MBPP: list the asserts in the prompt")

    def to_core(self) -> core.CodeSettings:
        """The core :class:`~tunecheck.core.CodeSettings` the pass@k metrics read."""
        return core.CodeSettings(**{n: getattr(self, n) for n in type(self).model_fields})


PASS_AT_K = re.compile(r"^pass@([1-9][0-9]*)$")


class TaskSpec(_Strict):
    """The task being fine-tuned for: the locked test data and how to score it."""

    name: str = "task"
    data: str
    lock: str | None = None
    split: str = "test"
    fields: FieldMap = Field(default_factory=FieldMap)
    parser: ParserSpec = Field(default_factory=ParserSpec)
    metrics: list[str] = Field(
        default_factory=lambda: ["exact_match"],
        description="metric names; an entry may be a mapping `{name: bertscore, idf: true}` "
        "whose other keys are that metric's options",
    )
    metric_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="metric name -> options (e.g. bertscore: {model: DIR})"
    )
    primary_metric: str | None = None
    json_schema: dict[str, Any] | None = None
    limit: int | None = Field(None, ge=1)
    allow_overlap: bool = False
    near_duplicate_threshold: float = Field(0.5, gt=0.0, le=1.0)
    require_blind_check: bool | None = Field(
        None,
        description="blind comparison before DEPLOY; default: true unless every metric is exact",
    )
    blind_check_examples: int = Field(50, ge=1, description="examples the blind check compares")
    must_not_regress: list[str] = Field(
        default_factory=list, description="slices on which a significant drop blocks DEPLOY"
    )
    code: CodeSpec | None = None
    judge: JudgeSpec | None = None

    def to_task(self, examples: Sequence[Example]) -> Task:
        """This task over ``examples`` as the core :class:`~tunecheck.task.Task`."""
        from tunecheck.task import Task

        return Task(
            self.name,
            list(examples),
            list(self.metrics),
            self.parser.to_core(),
            json_schema=self.json_schema,
            metric_options=self.metric_options,
            code=self.code.to_core() if self.code is not None else None,
        )

    @model_validator(mode="before")
    @classmethod
    def _metric_mappings(cls, data: Any) -> Any:
        """``metrics: [rouge_l, {name: bertscore, model: DIR}]`` -> names + ``metric_options``."""
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
            return data
        if not any(isinstance(m, dict) for m in data["metrics"]):
            return data
        data = dict(data)
        options = dict(data.get("metric_options") or {})
        names: list[Any] = []
        for entry in data["metrics"]:
            if isinstance(entry, dict):
                entry = dict(entry)
                name = entry.pop("name", None)
                if not isinstance(name, str):
                    raise ValueError(
                        "a metric given as a mapping needs `name:` (e.g. {name: bertscore, idf: true})"
                    )
                if name in options and entry:
                    raise ValueError(f"options for metric {name!r} are given twice")
                if entry:
                    options[name] = entry
                names.append(name)
            else:
                names.append(entry)
        data["metrics"] = names
        data["metric_options"] = options
        return data

    @model_validator(mode="after")
    def _primary(self) -> TaskSpec:
        if not self.metrics:
            raise ValueError("a task needs at least one metric")
        self.metrics = check_task_metrics(self.metrics, self.judge)
        if self.code is None and any(PASS_AT_K.match(m) for m in self.metrics):
            self.code = CodeSpec()  # pass@k means a code task
        if self.primary_metric is None:
            self.primary_metric = self.metrics[0]
        elif self.primary_metric not in self.metrics:
            raise ValueError(
                f"primary_metric {self.primary_metric!r} is not one of metrics {self.metrics}"
            )
        stray = sorted(set(self.metric_options) - set(self.metrics))
        if stray:
            raise ValueError(f"metric_options for {stray}, which are not in metrics {self.metrics}")
        return self


class LmEvalSamplesSpec(_Strict):
    """Folders written by ``lm_eval --log_samples --output_path`` for each model."""

    base: str
    finetuned: str


class ProbeSpec(_Strict):
    """A capability-regression probe: built-in generated, a benchmark file, a user task,
    or an lm-evaluation-harness task (``lm_eval: NAME``)."""

    name: str
    builtin: str | None = None
    path: str | None = None
    lm_eval: str | None = Field(
        None, description="an lm-eval task or group name, run on both models (limit: n)"
    )
    lm_eval_include: str | None = Field(
        None, description="a folder of extra lm-eval task YAML files"
    )
    lm_eval_samples: LmEvalSamplesSpec | None = Field(
        None, description="import these --log_samples folders instead of running lm-eval"
    )
    format: str | None = None
    n: int = Field(DEFAULT_PROBE_N, ge=1)
    mode: Literal["auto", "loglikelihood", "generate"] = "auto"
    metric: str | None = None
    fields: FieldMap | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _source(self) -> ProbeSpec:
        if sum(x is not None for x in (self.builtin, self.path, self.lm_eval)) != 1:
            raise ValueError("a probe needs exactly one of `builtin`, `path` or `lm_eval`")
        if self.lm_eval is None and (self.lm_eval_samples or self.lm_eval_include):
            raise ValueError("lm_eval_samples / lm_eval_include go with `lm_eval: TASK`")
        return self


class Thresholds(_Strict):
    """Relative probe drops: <= warn ok, warn..fail warning, >= fail failure."""

    warn: float = Field(0.05, ge=0.0, le=1.0)
    fail: float = Field(0.15, ge=0.0, le=1.0)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    min_gain: float = Field(
        0.0, ge=0.0, description="smallest task gain (absolute) worth deploying"
    )
    max_error_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="above this share of failed requests (any contender, any task) "
        "the run ends INCOMPLETE, without a verdict",
    )

    @model_validator(mode="after")
    def _order(self) -> Thresholds:
        if self.fail < self.warn:
            raise ValueError(f"fail ({self.fail}) must be >= warn ({self.warn})")
        return self

    def to_core(self) -> core.Thresholds:
        """The core :class:`~tunecheck.core.Thresholds` the verdict and the probes read."""
        return core.Thresholds(**{name: getattr(self, name) for name in type(self).model_fields})


class MlflowSpec(_Strict):
    """Where an MLflow run goes: a tracking URI (a local ``file:`` folder or ``sqlite:`` DB
    works offline) and an experiment; ``run_name`` defaults to the tunecheck run id."""

    tracking_uri: str
    experiment: str = "tunecheck"
    run_name: str | None = None
    run_id: str | None = Field(
        None, description="log into this existing MLflow run (e.g. the training run)"
    )
    tags: dict[str, str] = Field(default_factory=dict)


class WandbSpec(_Strict):
    """A W&B run: project, optional entity, ``mode`` offline (default; synced later with
    ``wandb sync``) or online, and where its files go (``dir``)."""

    project: str
    entity: str | None = None
    mode: Literal["offline", "online"] = "offline"
    run_name: str | None = None
    dir: str | None = None
    tags: list[str] = Field(default_factory=list)


class TrackingSpec(_Strict):
    """Experiment trackers that receive each run's parameters, metrics, verdict and reports."""

    mlflow: MlflowSpec | None = None
    wandb: WandbSpec | None = None


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
    probe_baseline: str | None = Field(
        None,
        description="contender the probes compare the candidate with (default: the base model "
        "without adapter)",
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="modules (dotted names) or .py files (relative to the spec) imported "
        "before the run: their @metric / @backend / @probe decorators extend tunecheck",
    )
    training: str | None = Field(
        None,
        description="the candidate's training configuration: the trainer's output folder "
        "(trainer_state.json, training_args.bin) or a JSON/YAML file; recorded in the result",
    )
    tracking: TrackingSpec | None = Field(
        None, description="also log the run to MLflow and/or Weights & Biases"
    )

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
        if self.probe_baseline is not None:
            if self.probe_baseline not in names:
                close = difflib.get_close_matches(self.probe_baseline, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"probe_baseline {self.probe_baseline!r} is not a contender{hint}; "
                    f"contenders: {names}"
                )
            if self.probe_baseline == self.candidate:
                raise ValueError("probe_baseline must be another contender than the candidate")
        return self

    @model_validator(mode="after")
    def _samples_for_pass_at_k(self) -> Spec:
        for ti, task in enumerate(self.tasks):
            ks = [int(m.group(1)) for name in task.metrics if (m := PASS_AT_K.match(name))]
            if not ks:
                continue
            for c in self.contenders:
                if max(ks) > c.generation.n:
                    raise ValueError(
                        f"task {task.name!r} (tasks.{ti}) asks for pass@{max(ks)} but contender "
                        f"{c.name!r} draws n = {c.generation.n} sample(s) per problem; pass@k "
                        f"needs k <= n: set `generation: {{n: {max(ks)}, temperature: 0.8}}` "
                        "or lower k"
                    )
                if c.generation.n > 1 and c.generation.temperature == 0:
                    raise ValueError(
                        f"contender {c.name!r} draws n = {c.generation.n} samples at temperature 0 "
                        "(all identical): set a temperature > 0, e.g. 0.8, for pass@k"
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
        # where results are logged is not part of what is evaluated; an unset training
        # path is left out so specs written before it existed keep their hash
        data = self.model_dump(mode="json", exclude={"tracking"})
        if data.get("training") is None:
            data.pop("training", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


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
            at = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
            field = ".".join(str(p) for p in loc) or "(top level)"
            where = f"{source}:{at}" if at else source
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
    if spec.plugins:
        from tunecheck.plugins import load_plugins

        load_plugins(spec.plugins, base_dir=base_dir, source=source)
    check_metric_options(spec, source)
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
        _resolve_metric_paths(task, fix)
        if task.judge is not None and task.judge.pairwise is not None:
            task.judge.pairwise.human_labels = fix(task.judge.pairwise.human_labels)
    for probe in spec.probes or []:
        probe.path = fix(probe.path)
        probe.lm_eval_include = fix(probe.lm_eval_include)
        if probe.lm_eval_samples is not None:
            probe.lm_eval_samples.base = fix(probe.lm_eval_samples.base) or ""
            probe.lm_eval_samples.finetuned = fix(probe.lm_eval_samples.finetuned) or ""
    spec.training = fix(spec.training)
    if spec.tracking and spec.tracking.wandb and spec.tracking.wandb.dir:
        spec.tracking.wandb.dir = fix(spec.tracking.wandb.dir)
    if spec.tracking and spec.tracking.mlflow:
        uri = spec.tracking.mlflow.tracking_uri
        if uri.startswith("sqlite:///"):
            spec.tracking.mlflow.tracking_uri = "sqlite:///" + (fix(uri[len("sqlite:///") :]) or "")
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


def _resolve_metric_paths(task: TaskSpec, fix: Any) -> None:
    """Local files in metric options (an encoder folder, a baseline file) are spec-relative."""
    from tunecheck.metrics import metric_info

    for name, options in task.metric_options.items():
        model = metric_info(name).options
        for key in getattr(model, "path_fields", ()):
            if isinstance(options.get(key), str):
                options[key] = fix(options[key])


def check_metric_options(spec: Spec, source: str = "<spec>") -> None:
    """Validate every task's metric options against the metrics' option models (SpecError)."""
    from tunecheck.metrics import METRICS, validate_options

    for i, task in enumerate(spec.tasks):
        # a metric not registered yet (a plugin) is validated when it is scored
        for name in (m for m in task.metrics if m in METRICS):
            validate_options(
                name, task.metric_options.get(name), where=f"{source}: tasks.{i}.metrics.{name}"
            )


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
