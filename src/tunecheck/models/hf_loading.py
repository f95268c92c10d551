"""What the transformers-based backends (``hf``, ``hf-classifier``) share: parsing a model
reference, options, device and dtype, content fingerprints, the tokenizer and adapter
loaders, and batching that halves on out-of-memory.

torch, transformers and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunecheck.errors import BackendError
from tunecheck.models.base import Model
from tunecheck.models.identity import stable_digest

log = logging.getLogger(__name__)

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}
# files that define a model's behaviour; training leftovers (optimizer state...) are not hashed
_HASHED_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt", ".jinja"}
_NOT_WEIGHTS = {
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
    "training_args.bin",
    "trainer_state.json",
}


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``hf:`` target: the base model folder and an optional adapter folder."""

    base: Path
    adapter: Path | None = None


def parse_ref(target: str, *, where: str | None = None) -> ModelRef:
    """Split ``base+adapter=path`` and resolve the base to a local folder.

    A ``.gguf`` base is converted once into a cached transformers folder; a name that is
    not a local path is looked up in the local hub cache (no download when offline).
    """
    where = where or f"model hf:{target}"
    parts = re.split(r"\+(?=[A-Za-z_]+=)", target)
    base_s, extras = parts[0], parts[1:]
    adapter: Path | None = None
    for extra in extras:
        key, _, value = extra.partition("=")
        if key != "adapter":
            raise BackendError(
                f"unknown model option {key!r} in the model reference",
                where=where,
                hint="write hf:BASE or hf:BASE+adapter=PATH (other settings go under `options:`)",
            )
        adapter = Path(value).expanduser()
        if not (adapter / "adapter_config.json").exists():
            raise BackendError(
                "adapter folder not found or not a PEFT adapter (no adapter_config.json)",
                where=f"{where}: {adapter}",
                hint="point adapter= at the folder written by `model.save_pretrained(...)` on a PEFT model",
            )
    return ModelRef(base=_resolve_base(base_s, where), adapter=adapter)


def _resolve_base(base: str, where: str) -> Path:
    if not base:
        raise BackendError("the model reference names no base model", where=where)
    path = Path(base).expanduser()
    if path.suffix == ".gguf":
        from tunecheck.models.gguf import converted_dir

        return converted_dir(path)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise BackendError(
                "model folder has no config.json (not a transformers model folder)",
                where=f"{where}: {path}",
                hint="point at the folder written by `save_pretrained`, or at a .gguf file",
            )
        return path
    if path.exists() or base.startswith((".", "/", "~")) or base.count("/") != 1:
        raise BackendError(
            "model not found",
            where=f"{where}: {path}",
            hint="give a local model folder, a .gguf file, or an `org/name` id already downloaded",
        )
    try:  # an org/name hub id: use the local copy (honours HF_HUB_OFFLINE)
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(base))
    except Exception as err:
        raise BackendError(
            f"model {base!r} is neither a local folder nor available in the hub cache ({type(err).__name__})",
            where=where,
            hint="download it once (`hf download NAME --local-dir DIR`) and reference the folder",
        ) from None


def check_options(options: dict[str, Any], where: str, known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise BackendError(
            f"unknown backend option(s): {', '.join(unknown)}",
            where=where,
            hint=f"known options: {', '.join(sorted(known))}",
        )


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` → ``cuda`` if available, else ``mps``, else ``cpu``; anything else is kept."""
    import torch

    device = device or "auto"
    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(
                f"device {device!r} requested but CUDA is not available",
                where="option device",
                hint="use device: auto",
            )
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str | None, device: str) -> Any:
    """``auto`` → bfloat16 on a GPU that supports it, else float32."""
    import torch

    dtype = (dtype or "auto").lower()
    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise BackendError(
            f"unknown dtype {dtype!r}",
            where="option dtype",
            hint="use auto, float32, bfloat16 or float16",
        )
    return getattr(torch, _DTYPES[dtype])


def parse_batch_size(value: Any) -> int | None:
    """An int >= 1, or ``None`` for ``auto``."""
    if value is None or value == "auto":
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if size < 1 or isinstance(value, bool):
        raise BackendError(
            f"invalid batch_size {value!r}",
            where="option batch_size",
            hint="a positive integer or `auto`",
        )
    return size


# --------------------------------------------------------------------------- fingerprints

_digest_lock = threading.Lock()


def _digest_cache_path() -> Path:
    from tunecheck.models.gguf import cache_root

    return cache_root() / "file-digests.json"


def file_sha256(path: Path) -> str:
    """sha256 of a file's contents, cached per machine by (path, size, mtime)."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = _digest_cache_path()
    with _digest_lock:
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
        if key in cache:
            return str(cache[key])
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _digest_lock:
        try:  # re-read: another process may have added entries meanwhile
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
        cache[key] = digest
        with contextlib.suppress(OSError):
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache_file.parent, prefix=".digests-")
            with os.fdopen(fd, "w") as f:
                json.dump(cache, f)
            os.replace(tmp, cache_file)  # atomic: readers never see half a file
    return digest


def folder_digest(folder: Path) -> str:
    """Hash over the contents of a model/adapter folder's weight and config files."""
    h = hashlib.sha256()
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix in _HASHED_SUFFIXES
        and p.name not in _NOT_WEIGHTS
        and not p.name.startswith("rng_state")
    )
    if not files:
        raise BackendError("no model files found", where=str(folder))
    for p in files:
        h.update(f"{p.name}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def ref_fingerprint(kind: str, ref: ModelRef, settings: Mapping[str, Any]) -> str:
    """Fingerprint of a loaded reference: backend kind, weights, adapter and ``settings``.

    ``settings`` are the backend options that can change an answer
    (:func:`tunecheck.models.identity.identity_settings`: dtype, device, max_length...).
    """
    return stable_digest(
        {
            "backend": kind,
            "base": folder_digest(ref.base),
            "adapter": folder_digest(ref.adapter) if ref.adapter is not None else None,
            "settings": dict(settings),
        }
    )[:32]


class TensorFingerprint:
    """Exact hash of a module's parameters and buffers, re-hashing only tensors that changed.

    torch bumps a tensor's version counter on every in-place write (optimizer steps
    included), so frozen weights are hashed once and only trained tensors again.
    """

    def __init__(self, module: Any) -> None:
        self.module = module
        self._seen: dict[str, tuple[tuple[Any, ...], bytes]] = {}

    def __call__(self) -> str:
        import torch

        h = hashlib.sha256()
        tensors = list(self.module.named_parameters()) + list(self.module.named_buffers())
        for name, t in tensors:
            state = (t._version, t.data_ptr(), tuple(t.shape), str(t.dtype), str(t.device))
            hit = self._seen.get(name)
            if hit is None or hit[0] != state:
                data = t.detach().reshape(-1).contiguous()
                if data.dtype == torch.bool:
                    data = data.to(torch.uint8)
                raw = data.view(torch.uint8).cpu().numpy() if data.numel() else b""
                hit = (state, hashlib.sha256(memoryview(raw)).digest())
                self._seen[name] = hit
            h.update(name.encode())
            h.update(hit[1])
        return h.hexdigest()[:32]


# --------------------------------------------------------------------------- helpers


def is_oom(err: BaseException) -> bool:
    """True for out-of-memory errors of any torch device."""
    text = str(err).lower()
    return (
        type(err).__name__ == "OutOfMemoryError"
        or "out of memory" in text
        or "can't allocate memory" in text
    )


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Eval mode and no autograd for one call; the caller's train/eval mode is restored."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train()


class Batcher:
    """Runs ``fn`` over batches of ``items`` (sorted longest-first by the caller).

    With ``batch_size: auto`` an out-of-memory error halves the batch size and retries
    the same batch; the smaller size is kept for the rest of the run.
    """

    def __init__(self, owner: TransformersModel) -> None:
        self.owner = owner

    def run(self, items: list[Any], fn: Any, width: Any = None) -> Iterator[tuple[list[Any], Any]]:
        """``width(item)`` (tokens the item occupies) lets ``auto`` cap rows by memory."""
        owner = self.owner
        i = 0
        while i < len(items):
            size = owner.current_batch_size
            if width is not None:
                size = min(size, owner.rows_that_fit(width(items[i])))
            batch = items[i : i + size]
            try:
                out = fn(batch)
            except Exception as err:
                if not is_oom(err):
                    raise
                owner._empty_cache()
                if owner.batch_size is not None or size == 1:
                    raise BackendError(
                        f"out of memory at batch size {size} on {owner.device}",
                        where=f"model {owner.name}",
                        hint="set `batch_size: auto` or a smaller batch_size, or lower max_length/max_new_tokens",
                    ) from None
                owner.current_batch_size = max(1, size // 2)
                log.warning(
                    "out of memory at batch size %d; retrying with %d",
                    size,
                    owner.current_batch_size,
                )
                continue
            i += len(batch)
            yield batch, out


# --------------------------------------------------------------------------- shared loaders


def load_tokenizer(ref: ModelRef, where: str) -> Any:
    """The adapter's tokenizer if it saved one (fine-tunes often change the template), else the base's."""
    from transformers import AutoTokenizer

    source = (
        ref.adapter
        if ref.adapter and (ref.adapter / "tokenizer_config.json").exists()
        else ref.base
    )
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise BackendError(
            f"could not load the tokenizer: {err}", where=f"{where}: {source}"
        ) from None


def apply_adapter(model: Any, ref: ModelRef, where: str) -> Any:
    """Apply the PEFT adapter of ``ref`` (if any) and merge it for plain-speed inference."""
    if ref.adapter is None:
        return model
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(ref.adapter))
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise BackendError(
            f"could not apply the adapter: {err}",
            where=f"{where}: {ref.adapter}",
            hint="check that the adapter was trained on this base model",
        ) from None
    return peft_model.merge_and_unload()


# --------------------------------------------------------------------------- common base


class TransformersModel(Model):
    """Identity, chunking and memory release shared by the transformers backends.

    Subclasses set ``name``, ``model``, ``device``, ``batch_size``, ``current_batch_size``,
    ``_fingerprint`` and ``_tensor_fp`` in their constructor.
    """

    name: str
    model: Any
    device: str
    batch_size: int | None
    current_batch_size: int
    _fingerprint: str | None
    _tensor_fp: TensorFingerprint | None

    #: options of an in-memory model (``from_loaded``) that can change an answer
    _loaded_settings: dict[str, Any] | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is not None:
            fp = self._fingerprint
        else:
            assert self._tensor_fp is not None
            fp = "tensors:" + self._tensor_fp()
        if self._loaded_settings:
            return f"{fp}|" + stable_digest(self._loaded_settings)[:16]
        return fp

    @property
    def cache_chunk_size(self) -> int:
        """How many requests the cache wrapper hands over at once (one batch: commit per batch)."""
        return self.current_batch_size

    def rows_that_fit(self, tokens: int) -> int:
        """Rows of ``tokens`` tokens one batch may hold (a backend may cap it by memory)."""
        return self.current_batch_size

    def _empty_cache(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        elif self.device == "mps":
            torch.mps.empty_cache()
