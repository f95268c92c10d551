"""Model backends behind one interface (see :mod:`tunecheck.models.base`).

A model reference in a spec is ``BACKEND:TARGET``::

    hf:path/to/model                      a local transformers folder or a .gguf file
    hf:base_dir+adapter=path/to/lora      a PEFT adapter over a base model
    openai:model-name@http://127.0.0.1:8000/v1
    hf-classifier:path/to/classifier

Backend modules are imported on first use; each imports its heavy libraries
(torch, transformers, httpx) inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

from tunecheck.errors import BackendError
from tunecheck.models.base import (
    Generation,
    GenerationParams,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    backend,
    backends,
)

# registry name -> module that defines it; imported lazily by load_model
_BUILTIN_MODULES = {
    "hf": "tunecheck.models.hf",
    "hf-classifier": "tunecheck.models.hf_classifier",
    "openai": "tunecheck.models.openai_compat",
}

__all__ = [
    "Generation",
    "GenerationParams",
    "GenerationRequest",
    "LoglikelihoodRequest",
    "LoglikelihoodResult",
    "Model",
    "backend",
    "backends",
    "load_model",
    "split_model_ref",
]


def split_model_ref(ref: str) -> tuple[str, str]:
    """Split ``"hf:path"`` into ``("hf", "path")``; a bare path means ``hf``."""
    name, sep, target = ref.partition(":")
    if not sep or (name not in _BUILTIN_MODULES and name not in backends):
        # Windows drive letters and bare paths: default to the local backend
        return "hf", ref
    return name, target


def load_model(ref: str, *, lazy: bool = False, **options: Any) -> Model:
    """Instantiate the backend named by ``ref`` (see module docs) with backend ``options``.

    ``lazy=True`` defers loading the weights until a request needs them, for backends
    that can fingerprint a model without loading it (``fingerprint_for``); a fully
    cached re-run then never loads the model.
    """
    name, target = split_model_ref(ref)
    if name not in backends and name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
    cls = backends.get(name, where=f"model {ref!r}")
    if not target:
        raise BackendError(
            f"model reference {ref!r} names no model", hint="write BACKEND:PATH_OR_NAME"
        )
    fingerprint_for = getattr(cls, "fingerprint_for", None)
    if lazy and fingerprint_for is not None:
        from tunecheck.models.lazy import LazyModel

        return LazyModel(
            lambda: cls.from_ref(target, **options),
            fingerprint_for(target, **options),
            backend_name=name,
            supports_loglikelihood=cls.supports_loglikelihood,
            name=target,
        )
    return cls.from_ref(target, **options)
