"""What identifies a backend's answers in the cache: safe by default.

A cached answer is served again only for the same ``(model fingerprint, request key)``.
The request key covers the rendered prompt and every generation parameter
(:meth:`GenerationRequest.cache_key`). The model fingerprint covers the weights (or the
server and the model it serves) and **every backend option**, except the options listed
in :data:`SAFE_OPTIONS`: a reviewed allow-list of settings that cannot change an output
(how many requests run at once, how long to wait, how often to retry). A new option is
therefore part of the key until someone reviews it and adds it to the list with a reason.

Keys are independent of the Python version and process: values are serialised as JSON
with sorted keys (floats by their shortest ``repr``, stable since Python 3.1), UTF-8
encoded and hashed with sha256. Python's ``hash()`` (salted per process) is never used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from tunecheck.errors import BackendError

#: backend -> option -> why it cannot change an output. Every other option is in the key.
SAFE_OPTIONS: dict[str, dict[str, str]] = {
    "openai": {
        "api_key_env": "names the credential, never the model or its settings",
        "concurrency": "how many requests are in flight; each request is answered alone",
        "timeout": "a request that times out is an error, never a stored answer",
        "max_retries": "how often a failed request is retried; failures are never stored",
        "backoff_base": "the wait before a retry",
        "backoff_max": "the longest wait before a retry",
        "hang_after": "how many timeouts in a row end a run against a silent server; "
        "an answer is never changed by it",
    },
    "hf": {
        "batch_size": "rows per forward pass; rows are padded and masked independently",
        "prefix_cache": "reuses the key/value cache of a shared prompt prefix; the same "
        "logits as the full prompt (tests/models/test_hf_backend.py)",
    },
    "hf-classifier": {
        "batch_size": "rows per forward pass; rows are padded and masked independently",
    },
}

#: HTTP headers that carry credentials: never hashed into a key (rotating a key keeps the cache)
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON data, or a clear error for what has no stable form."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BackendError(f"{value!r} cannot be part of a cache key", where=where)
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v, where) for v in value), key=canonical_json)
    # an arbitrary object's str() may hold a memory address: it would never match again
    raise BackendError(
        f"a {type(value).__name__} cannot be part of a cache key",
        where=where,
        hint="backend options must be plain values (numbers, strings, lists, mappings)",
    )


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, non-ASCII kept as is."""
    return json.dumps(
        _plain(value, "value"),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def stable_digest(value: Any) -> str:
    """sha256 (hex) of :func:`canonical_json` of ``value``: equal in every process and version."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def identity_settings(
    backend: str, options: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The options that take part in ``backend``'s fingerprint: all but the safe ones.

    ``defaults`` are filled in first, so writing a default out (``max_length: null``,
    ``endpoint: null``) keeps the key of leaving it out.
    """
    safe = SAFE_OPTIONS.get(backend, {})
    merged = {**(defaults or {}), **options}
    return {
        k: _plain(v, f"options.{k}")
        for k, v in sorted(merged.items())
        if k not in safe and not (v is None and (defaults or {}).get(k) is None)
    }
