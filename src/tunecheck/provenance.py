"""What exactly was compared: contender identities, training configuration, data hashes.

A ``report.json`` must answer "which model, which adapter, which prompt, which
generation settings, trained how, on which data?" on its own, without the store.
:func:`contender_info` and :func:`data_info` build those blocks at run time;
:func:`training_info` reads a fine-tune's configuration from the files trainers
write next to an adapter (``adapter_config.json``, ``trainer_state.json``,
``training_args.bin``) or from a ``training:`` path in the spec.

Backend options are recorded with secrets removed: a key whose name says it holds a
secret (``api_key``, ``token``, ``password``, ``authorization``...) is replaced by
``***``; ``api_key_env`` (the *name* of a variable) is kept.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tunecheck.errors import SpecError

__all__ = [
    "ContenderInfo",
    "DataInfo",
    "TrainingInfo",
    "contender_info",
    "data_info",
    "library_versions",
    "redact",
    "training_info",
]

#: packages whose versions change what a run computes (only installed ones are recorded)
LIBRARIES = (
    "tunecheck", "numpy", "scipy", "pydantic", "torch", "transformers", "peft", "accelerate",
    "trl", "datasets", "sentence-transformers", "sacrebleu", "rouge-score", "bert-score",
    "lm_eval", "httpx",
)  # fmt: skip

_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|authorization|bearer)", re.I)
_SECRET_VALUE = re.compile(r"^(Bearer\s+\S+|sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,})$")
REDACTED = "***"
# files up to this size are embedded as JSON; bigger ones are recorded by path and hash only
MAX_EMBEDDED_BYTES = 2_000_000


class TrainingInfo(BaseModel):
    """How a contender's weights were trained, as far as the files next to them tell."""

    source: str = Field(
        description="where it was read: adapter folder or the spec's training: path"
    )
    adapter_config: dict[str, Any] | None = None
    trainer_state: dict[str, Any] | None = Field(
        None,
        description="trainer_state.json (log history included): steps, losses, best checkpoint",
    )
    training_args: dict[str, Any] | None = Field(
        None, description="training_args.bin read safely (weights_only), else only path and hash"
    )
    config: dict[str, Any] | None = Field(
        None, description="a JSON/YAML training configuration named by the spec's training: path"
    )
    files: dict[str, str] = Field(default_factory=dict, description="file path -> sha256")


class ContenderInfo(BaseModel):
    """One contender's identity: enough to reproduce its answers."""

    name: str
    role: str = Field(description="candidate or baseline")
    model: str = Field(description="the model reference as written in the spec")
    fingerprint: str | None = Field(None, description="content fingerprint of the weights")
    adapter_path: str | None = None
    adapter_config: dict[str, Any] | None = None
    prompt: dict[str, Any] = Field(
        default_factory=dict, description="system, few-shot, template and chat flag"
    )
    prompt_fingerprint: str | None = None
    generation: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(
        default_factory=dict, description="backend options, secrets replaced by ***"
    )
    training: TrainingInfo | None = None


class DataInfo(BaseModel):
    """A task's test data: the file, its hash, and the lock it was verified against."""

    task: str
    data: str
    data_sha256: str | None = None
    lock: str | None = None
    lock_sha256: str | None = None
    test_sha256: str | None = Field(
        None, description="the lock's hash of the normalised test split"
    )
    n_examples: int


def redact(value: Any, key: str = "") -> Any:
    """``value`` with every secret-looking key's value (and bearer-like strings) replaced."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            k = str(k)
            # api_key_env holds the NAME of a variable, which is safe and useful to record
            secret = _SECRET_KEY.search(k) and not k.lower().endswith("_env")
            out[k] = REDACTED if secret and v not in (None, "") else redact(v, k)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, key) for v in value]
    if isinstance(value, str) and _SECRET_VALUE.match(value.strip()):
        return REDACTED
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def library_versions() -> dict[str, str]:
    """Python and the installed versions of the libraries that shape a run's numbers."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def adapter_path(model_ref: str) -> Path | None:
    """The adapter folder of an ``hf:BASE+adapter=PATH`` reference (None when there is none)."""
    _, sep, target = model_ref.partition(":")
    if not sep:
        return None
    for part in target.split("+")[1:]:
        key, eq, value = part.partition("=")
        if eq and key == "adapter":
            return Path(value).expanduser()
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file() or path.stat().st_size > MAX_EMBEDDED_BYTES:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else {"value": data}


def read_training_args(path: Path) -> dict[str, Any]:
    """``training_args.bin`` as plain values, read without running code from it.

    Trainer pickles a ``TrainingArguments`` object, and unpickling arbitrary objects runs
    code: a plain mapping is read with ``torch.load(weights_only=True)``; anything else
    (the pickled ``TrainingArguments``) by :func:`tunecheck.safe_pickle.plain_values`,
    which replaces every class the file names by an inert stand-in and keeps the data.
    A file neither can parse is recorded by path and hash only.
    """
    from tunecheck.safe_pickle import UnreadablePickle, plain_values

    info: dict[str, Any] = {"path": str(path), "sha256": file_sha256(path)}
    if path.stat().st_size > MAX_EMBEDDED_BYTES:
        info["note"] = "too large to embed: recorded by hash only"
        return info
    try:
        import torch

        with warnings.catch_warnings():  # torch warns about protocols it may not fully read
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), weights_only=True, map_location="cpu")
    except Exception:  # no torch, or the safe loader refused pickled classes
        try:
            obj = plain_values(path)
        except UnreadablePickle as err:
            info["note"] = f"{err.message}: recorded by hash only"
            return info
        info["read"] = "pickled classes replaced by their plain values; no code from the file ran"
    try:
        if isinstance(obj, dict):
            info["args"] = redact({str(k): v for k, v in obj.items()})
        elif hasattr(obj, "to_dict"):
            info["args"] = redact(obj.to_dict())
        else:
            info["args"] = redact(obj)
    except RecursionError:  # a structure that contains itself
        info["note"] = "a self-referencing structure: recorded by hash only"
    return info


def _training_from_folder(folder: Path, source: str) -> TrainingInfo | None:
    """Trainer files in ``folder`` or its parent (a checkpoint-N folder inside output_dir)."""
    info = TrainingInfo(source=source)
    found = False
    for name, attr in (
        ("adapter_config.json", "adapter_config"),
        ("trainer_state.json", "trainer_state"),
    ):
        for place in (folder, folder.parent):
            path = place / name
            data = _read_json(path)
            if data is not None:
                setattr(info, attr, data)
                info.files[str(path)] = file_sha256(path)
                found = True
                break
    for place in (folder, folder.parent):
        path = place / "training_args.bin"
        if path.is_file():
            info.training_args = read_training_args(path)
            info.files[str(path)] = info.training_args["sha256"]
            found = True
            break
    return info if found else None


def training_info(adapter: Path | None, spec_training: str | None = None) -> TrainingInfo | None:
    """The training configuration known for a contender.

    ``spec_training``: the spec's ``training:`` path — a folder with trainer files, or a
    JSON/YAML configuration file. It wins over what is found next to the adapter, whose
    files fill in what it lacks.
    """
    info: TrainingInfo | None = None
    if spec_training:
        path = Path(spec_training).expanduser()
        if not path.exists():
            raise SpecError(
                "training configuration not found",
                where=f"spec: training: {spec_training}",
                hint="point training: at the trainer's output folder or a JSON/YAML config file",
            )
        if path.is_dir():
            info = _training_from_folder(path, str(path)) or TrainingInfo(source=str(path))
        else:
            info = TrainingInfo(source=str(path), config=_read_config(path))
            info.files[str(path)] = file_sha256(path)
            if path.name == "trainer_state.json":
                info.trainer_state, info.config = info.config, None
    if adapter is not None and adapter.is_dir():
        found = _training_from_folder(adapter, str(adapter))
        if info is None:
            return found
        if found is not None:
            for attr in ("adapter_config", "trainer_state", "training_args"):
                if getattr(info, attr) is None:
                    setattr(info, attr, getattr(found, attr))
            info.files = {**found.files, **info.files}
    return info


def _read_config(path: Path) -> dict[str, Any]:
    import yaml

    if path.stat().st_size > MAX_EMBEDDED_BYTES:
        return {"note": "too large to embed", "sha256": file_sha256(path)}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise SpecError(
            f"training configuration is not JSON or YAML ({err})",
            where=f"spec: training: {path}",
        ) from None
    return redact(data if isinstance(data, dict) else {"value": data})


def contender_info(
    contender: Any,
    *,
    role: str,
    fingerprint: str | None,
    seed: int,
    spec_training: str | None = None,
) -> ContenderInfo:
    """The identity block of one :class:`~tunecheck.spec.ContenderSpec`."""
    prompt = contender.prompt
    adapter = adapter_path(contender.model)
    training = training_info(adapter, spec_training if role == "candidate" else None)
    return ContenderInfo(
        name=contender.name,
        role=role,
        model=contender.model,
        fingerprint=fingerprint,
        adapter_path=str(adapter) if adapter else None,
        adapter_config=_read_json(adapter / "adapter_config.json") if adapter else None,
        prompt=prompt.model_dump(mode="json"),
        prompt_fingerprint=prompt.build().fingerprint(),
        generation={**contender.generation.model_dump(mode="json"), "seed": seed},
        options=redact(dict(contender.options)),
        training=training,
    )


def data_info(loaded: Any) -> DataInfo:
    """The data block of a :class:`~tunecheck.runner.LoadedTask`."""
    spec = loaded.spec
    report = loaded.verify_report or {}
    path = Path(spec.data)
    return DataInfo(
        task=spec.name,
        data=spec.data,
        data_sha256=file_sha256(path) if path.is_file() else None,
        lock=spec.lock,
        lock_sha256=loaded.lock_hash,
        test_sha256=report.get("test_sha256"),
        n_examples=len(loaded.examples),
    )
