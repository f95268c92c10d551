"""Cache identity: every option that can change an answer is in the key, safe ones are not.

For each backend, an answer cached under one set of options is served again only when
nothing outside the reviewed allow-list (``SAFE_OPTIONS``) changed; the key is the same
in every process (no salted ``hash()``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openai_servers import FaultServer

from tunecheck.errors import BackendError
from tunecheck.models import Generation, GenerationParams, GenerationRequest, Model
from tunecheck.models import hf as hf_mod
from tunecheck.models import hf_classifier as clf_mod
from tunecheck.models import openai_compat as openai_mod
from tunecheck.models.cache import CachedModel
from tunecheck.models.identity import (
    SAFE_OPTIONS,
    canonical_json,
    identity_settings,
    stable_digest,
)
from tunecheck.models.lazy import LazyModel
from tunecheck.store import open_store

REQUESTS = [
    GenerationRequest(f"question {i}", GenerationParams(max_new_tokens=4)) for i in range(3)
]


class Counting(Model):
    """Stands in for loaded weights: answers every request and counts them."""

    backend_name = "counting"

    def __init__(self) -> None:
        self.asked = 0

    @property
    def fingerprint(self) -> str:  # pragma: no cover - the lazy wrapper answers this
        raise AssertionError("the fingerprint must come from fingerprint_for")

    def generate(self, requests: Sequence[GenerationRequest], progress=None) -> list[Generation]:
        self.asked += len(requests)
        return [Generation(texts=[f"answer to {r.prompt}"]) for r in requests]


@pytest.fixture()
def store(store_url: str):
    s = open_store(store_url)
    yield s
    s.close()


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize(
    ("backend", "known"),
    [
        ("openai", set(openai_mod._OPTIONS) - {"base_url"}),
        ("hf", hf_mod._KNOWN_OPTIONS),
        ("hf-classifier", clf_mod._OPTIONS),
    ],
)
def test_allow_list_names_real_options_with_reasons(backend: str, known: set[str]) -> None:
    safe = SAFE_OPTIONS[backend]
    assert set(safe) <= known, f"stale entries: {set(safe) - known}"
    assert all(len(reason) > 10 for reason in safe.values())
    # whatever is not reviewed as safe is in the key, including options added later
    opts = {name: f"value-{name}" for name in known}
    assert set(identity_settings(backend, opts)) == known - set(safe)
    assert identity_settings(backend, {"brand_new_option": 1}) == {"brand_new_option": 1}


def test_keys_are_sorted_json_sha256_independent_of_python() -> None:
    value = {"b": [1, 2.5, "é"], "a": {"y": None, "x": True}}
    text = '{"a":{"x":true,"y":null},"b":[1,2.5,"é"]}'
    assert canonical_json(value) == text
    assert stable_digest(value) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    # insertion order does not matter; an object with no stable form is refused
    assert stable_digest({"a": {"x": True, "y": None}, "b": [1, 2.5, "é"]}) == stable_digest(value)
    with pytest.raises(BackendError, match="cannot be part of a cache key"):
        stable_digest({"dtype": object()})
    with pytest.raises(BackendError, match="cannot be part of a cache key"):
        stable_digest({"temperature": float("nan")})


def test_defaults_written_out_keep_the_key() -> None:
    defaults = {"max_length": None, "dtype": "auto"}
    assert identity_settings("hf", {}, defaults) == identity_settings(
        "hf", {"max_length": None, "dtype": "auto"}, defaults
    )
    assert identity_settings("hf", {"max_length": 64}, defaults) != identity_settings(
        "hf", {}, defaults
    )


# --------------------------------------------------------------------------- hf and hf-classifier


def _model_folder(root: Path, name: str = "base") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "id2label": {}}))
    (folder / "model.safetensors").write_bytes(b"not really weights, but hashed like them")
    return folder


def _adapter(root: Path) -> Path:
    folder = root / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"lora")
    return folder


def _asked(cls: Any, target: str, store: Any, **options: Any) -> int:
    """How many of REQUESTS reach the weights when asked through the runner's cache."""
    weights = Counting()
    lazy = LazyModel(
        lambda: weights, cls.fingerprint_for(target, **options), backend_name="x", name=target
    )
    answers = CachedModel(lazy, store).generate(REQUESTS)
    assert [a.text for a in answers] == [f"answer to {r.prompt}" for r in REQUESTS]
    return weights.asked


HF_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("dtype", {"dtype": "bfloat16"}),
    ("max_length", {"max_length": 64}),
]
HF_SAFE: list[tuple[str, dict[str, Any]]] = [
    ("batch_size", {"batch_size": 1}),
    ("prefix_cache", {"prefix_cache": False}),
    ("device written out", {"device": "cpu"}),  # auto resolves to cpu here: the same device
    ("dtype written out", {"dtype": "float32"}),  # auto is float32 on a CPU
]


@pytest.mark.parametrize(
    ("backend", "cls"), [("hf", hf_mod.HFModel), ("hf-classifier", clf_mod.HFClassifier)]
)
def test_transformers_backends_regenerate_exactly_when_an_answer_can_change(
    backend: str, cls: Any, tmp_path: Path, store: Any
) -> None:
    base = _model_folder(tmp_path)
    target = str(base)
    assert _asked(cls, target, store) == len(REQUESTS)
    assert _asked(cls, target, store) == 0  # the same model again: all from the cache
    changes = list(HF_CHANGES)
    if backend == "hf-classifier":
        changes.append(("labels", {"labels": ["ham", "spam"]}))
    for what, option in changes:
        assert _asked(cls, target, store, **option) == len(REQUESTS), what
        assert _asked(cls, target, store, **option) == 0, what
    for what, option in HF_SAFE:
        if what == "prefix_cache" and backend == "hf-classifier":
            continue  # not an option of the classifier
        assert _asked(cls, target, store, **option) == 0, what
    # the weights themselves, and an adapter over them
    assert _asked(cls, f"{base}+adapter={_adapter(tmp_path)}", store) == len(REQUESTS)
    (base / "model.safetensors").write_bytes(b"other weights")
    assert _asked(cls, target, store) == len(REQUESTS)


def test_classifier_label_map_is_an_option_not_a_dtype(tmp_path: Path) -> None:
    base = str(_model_folder(tmp_path))
    fp = clf_mod.HFClassifier.fingerprint_for
    assert fp(base, labels=["a", "b"]) != fp(base, labels=["b", "a"])
    assert fp(base, labels=["a", "b"]) != fp(base)
    assert fp(base, dtype="float32") == fp(base)


def test_in_memory_model_max_length_changes_its_identity() -> None:
    import torch

    net = torch.nn.Linear(2, 2)

    class Tok:
        eos_token_id = 0
        pad_token_id = 0
        model_max_length = 128

    same = [hf_mod.HFModel.from_loaded(net, Tok(), fingerprint="w", batch_size=b) for b in (1, 8)]
    assert same[0].fingerprint == same[1].fingerprint == "w"
    short = hf_mod.HFModel.from_loaded(net, Tok(), fingerprint="w", max_length=16)
    assert short.fingerprint != same[0].fingerprint


# --------------------------------------------------------------------------- openai


OPENAI_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("endpoint", {"endpoint": "completions"}),
    ("extra_body", {"extra_body": {"top_k": 1}}),
    ("extra_body value", {"extra_body": {"top_k": 2}}),
    ("headers", {"headers": {"X-Route": "canary"}}),
]
OPENAI_SAFE: list[tuple[str, dict[str, Any]]] = [
    ("concurrency", {"concurrency": 2}),
    ("timeout", {"timeout": 5.0}),
    ("max_retries", {"max_retries": 1}),
    ("backoff_base", {"backoff_base": 0.01}),
    ("backoff_max", {"backoff_max": 1.0}),
    ("credential header", {"headers": {"Authorization": "Bearer other-key"}}),
    ("api_key_env", {"api_key_env": "TUNECHECK_IDENTITY_TEST_KEY"}),
]


def test_openai_regenerates_exactly_when_an_answer_can_change(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNECHECK_IDENTITY_TEST_KEY", "sk-test")
    with FaultServer() as srv:
        ref = f"fault-model@{srv.url}"

        def asked(**options: Any) -> int:
            before = len(srv.bodies)
            model = openai_mod.OpenAIModel.from_ref(ref, **options)
            answers = CachedModel(model, store).generate(REQUESTS)
            assert all(a.ok for a in answers)
            return len(srv.bodies) - before

        assert asked() == len(REQUESTS)
        assert asked() == 0
        for what, option in OPENAI_CHANGES:
            assert asked(**option) == len(REQUESTS), what
            assert asked(**option) == 0, what
        for what, option in OPENAI_SAFE:
            assert asked(**option) == 0, what
        # the options really reached the server: the cache did not hide a real difference
        assert any(b.get("top_k") == 1 for b in srv.bodies)


# --------------------------------------------------------------------------- across processes

_PRINT_KEYS = """
import json, sys
from tunecheck.models.hf import HFModel
from tunecheck.models.identity import stable_digest
from tunecheck.models.base import GenerationRequest, GenerationParams
req = GenerationRequest(({"role": "user", "content": "héllo"},), GenerationParams(stop=("\\n",)))
print(json.dumps([
    HFModel.fingerprint_for(sys.argv[1], max_length=64, batch_size=2),
    stable_digest({"extra_body": {"top_k": 1, "min_p": 0.05}, "set": {3, 1, 2}}),
    req.cache_key(),
]))
"""


@pytest.mark.slow
def test_keys_are_equal_in_every_process(tmp_path: Path) -> None:
    base = _model_folder(tmp_path)
    outputs = []
    for seed in ("1", "4242"):  # str hashes differ between these processes
        env = {**os.environ, "PYTHONHASHSEED": seed, "TUNECHECK_CACHE": str(tmp_path / seed)}
        done = subprocess.run(
            [sys.executable, "-c", _PRINT_KEYS, str(base)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == hf_mod.HFModel.fingerprint_for(str(base), max_length=64, batch_size=2)
    assert len(outputs[0][0]) == 32 and len(outputs[0][1]) == 64
