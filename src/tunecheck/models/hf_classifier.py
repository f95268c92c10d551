"""The ``hf-classifier`` backend: a sequence-classification model (or a LoRA over one).

This is the common "base vs fine-tuned ``text-classification`` pipeline" comparison: the
generated text is the predicted label name (``config.id2label``), and the class
probabilities are kept in ``Generation.meta["probs"]`` (label → probability) for
calibration metrics. There are no log-probabilities of text: ``loglikelihood`` raises.

Model references::

    hf-classifier:path/to/classifier
    hf-classifier:path/to/base+adapter=path/to/lora   (PEFT task_type SEQ_CLS)

For an adapter, the label names come from the ``labels`` option, else from a
``config.json`` saved next to the adapter, else from the base's config; the number of
classes is read from the adapter's saved classification head when the base has none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunecheck.errors import BackendError
from tunecheck.models.base import (
    Generation,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Progress,
    Prompt,
    backend,
)
from tunecheck.models.hf_loading import (
    Batcher,
    ModelRef,
    TensorFingerprint,
    TransformersModel,
    apply_adapter,
    check_options,
    eval_mode,
    load_tokenizer,
    parse_batch_size,
    parse_ref,
    ref_fingerprint,
    resolve_device,
    resolve_dtype,
)
from tunecheck.models.identity import identity_settings

log = logging.getLogger(__name__)

_OPTIONS = {"device", "dtype", "batch_size", "max_length", "labels"}
# the label map comes from `labels`, or from files already hashed into the fingerprint
_DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "dtype": "auto",
    "batch_size": "auto",
    "max_length": None,
    "labels": None,
}
_HEAD_NAMES = ("classifier", "score", "classification_head", "out_proj")


def _identity(options: dict[str, Any], device: str, dtype: Any) -> dict[str, Any]:
    """The options in the fingerprint (``labels`` and ``max_length`` included)."""
    return identity_settings(
        "hf-classifier", {**options, "device": device, "dtype": str(dtype)}, _DEFAULTS
    )


def _head_size(adapter: Path) -> int | None:
    """Number of classes of the classification head saved inside a PEFT adapter."""
    files = sorted(adapter.glob("adapter_model*.safetensors"))
    if not files:
        return None
    from safetensors import safe_open

    best = None
    with safe_open(str(files[0]), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
            parts = key.split(".")
            if key.endswith(".weight") and any(h in parts for h in _HEAD_NAMES):
                shape = f.get_slice(key).get_shape()
                if len(shape) == 2:
                    best = int(shape[0])  # the last (output) projection wins
    return best


def _label_config(ref: ModelRef, labels: Any, where: str) -> dict[str, Any]:
    """``num_labels``/``id2label``/``label2id`` overrides for the base config, if needed."""
    if labels is not None:
        if (
            not isinstance(labels, list | tuple)
            or not labels
            or not all(isinstance(x, str) for x in labels)
        ):
            raise BackendError(
                "option `labels` must be a list of label names", where=f"{where}: options.labels"
            )
        names = list(labels)
    elif ref.adapter is not None and (ref.adapter / "config.json").exists():
        cfg = json.loads((ref.adapter / "config.json").read_text())
        id2label = cfg.get("id2label") or {}
        names = [id2label[k] for k in sorted(id2label, key=int)] if id2label else []
    else:
        names = []
    if not names and ref.adapter is not None:
        n = _head_size(ref.adapter)
        base_cfg = json.loads((ref.base / "config.json").read_text())
        base_n = len(base_cfg.get("id2label") or {}) or None
        if n and n != base_n:
            names = [f"LABEL_{i}" for i in range(n)]
    if not names:
        return {}
    return {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {n: i for i, n in enumerate(names)},
    }


@backend("hf-classifier")
class HFClassifier(TransformersModel):
    """A transformers sequence classifier: predicts a label per request."""

    supports_loglikelihood = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        fingerprint: str | None,
        device: str,
        batch_size: int | None = None,
        max_length: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.current_batch_size = batch_size or (64 if device.startswith("cuda") else 16)
        self._fingerprint = fingerprint
        self._tensor_fp = None if fingerprint else TensorFingerprint(model)
        tok_max = getattr(tokenizer, "model_max_length", None) or 512
        cfg_max = getattr(model.config, "max_position_embeddings", None) or tok_max
        self.max_length = int(max_length or min(tok_max, cfg_max))
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @classmethod
    def validate_ref(cls, target: str, **options: Any) -> None:
        """Check a reference and its options without loading weights (pre-flight)."""
        where = f"model hf-classifier:{target}"
        check_options(options, where, _OPTIONS)
        ref = parse_ref(target, where=where)
        resolve_dtype(options.get("dtype"), resolve_device(options.get("device")))
        parse_batch_size(options.get("batch_size", "auto"))
        _label_config(ref, options.get("labels"), where)

    @classmethod
    def fingerprint_for(cls, target: str, **options: Any) -> str:
        """The fingerprint :meth:`from_ref` would give, computed without loading the weights."""
        where = f"model hf-classifier:{target}"
        check_options(options, where, _OPTIONS)
        ref = parse_ref(target, where=where)
        device = resolve_device(options.get("device"))
        dtype = resolve_dtype(options.get("dtype"), device)
        return ref_fingerprint("hf-classifier", ref, _identity(options, device, dtype))

    @classmethod
    def from_ref(cls, target: str, **options: Any) -> HFClassifier:
        """Load a classifier folder or ``base+adapter=path`` (options: device, dtype, batch_size,
        max_length, labels)."""
        where = f"model hf-classifier:{target}"
        check_options(options, where, _OPTIONS)
        ref = parse_ref(target, where=where)
        device = resolve_device(options.get("device"))
        dtype = resolve_dtype(options.get("dtype"), device)
        from transformers import AutoModelForSequenceClassification

        overrides = _label_config(ref, options.get("labels"), where)
        tokenizer = load_tokenizer(ref, where)
        if tokenizer.pad_token is None:  # decoder-only classifiers: pad with EOS (our own copy)
            tokenizer.pad_token = tokenizer.eos_token
            overrides.setdefault("pad_token_id", tokenizer.eos_token_id)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(ref.base), dtype=dtype, **overrides
            )
        except (OSError, ValueError, KeyError) as err:
            raise BackendError(
                f"could not load the classifier: {err}", where=f"{where}: {ref.base}"
            ) from None
        model = apply_adapter(model, ref, where).to(device)
        model.eval()
        return cls(
            model,
            tokenizer,
            name=target,
            fingerprint=ref_fingerprint("hf-classifier", ref, _identity(options, device, dtype)),
            device=device,
            batch_size=parse_batch_size(options.get("batch_size", "auto")),
            max_length=options.get("max_length"),
        )

    @classmethod
    def from_loaded(
        cls, model: Any, tokenizer: Any, *, name: str = "in-memory", fingerprint: str | None = None
    ) -> HFClassifier:
        """Wrap an already-loaded classifier (no copy); its train/eval mode is preserved."""
        device = str(next(model.parameters()).device)
        return cls(model, tokenizer, name=name, fingerprint=fingerprint, device=device)

    def _text(self, prompt: Prompt, request_id: str) -> str:
        if isinstance(prompt, str):
            return prompt
        if len(prompt) == 1 and prompt[0].get("role") == "user":
            return prompt[0].get("content", "")
        raise BackendError(
            f"request {request_id!r}: a classifier reads one text, but the prompt has "
            f"{len(prompt)} chat messages (system prompt or few-shot examples)",
            where=f"model hf-classifier:{self.name}",
            hint="give this contender a plain prompt: no system/few_shot (or `chat: false`)",
        )

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        if not requests:
            return []
        texts = [self._text(r.prompt, r.id) for r in requests]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        order = sorted(range(len(requests)), key=lambda i: -lengths[i])
        results: list[Generation | None] = [None] * len(requests)
        with eval_mode(self.model):
            for batch, probs in Batcher(self).run(
                order, lambda b: self._classify([texts[i] for i in b])
            ):
                for i, p in zip(batch, probs, strict=True):
                    best = max(range(len(p)), key=p.__getitem__)
                    meta: dict[str, Any] = {"probs": dict(zip(self.labels, p, strict=True))}
                    if lengths[i] > self.max_length:
                        meta["prompt_truncated"] = True
                    results[i] = Generation(
                        texts=[self.labels[best]] * requests[i].params.n,
                        prompt_tokens=min(lengths[i], self.max_length),
                        completion_tokens=0,
                        meta=meta,
                    )
                if progress:
                    progress(len(batch))
        return [r for r in results if r is not None]

    def _classify(self, texts: list[str]) -> list[list[float]]:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        logits = self.model(**enc).logits.float()
        return logits.softmax(-1).tolist()

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]:
        raise BackendError(
            "the hf-classifier backend predicts labels and has no text log-probabilities",
            where=f"model hf-classifier:{self.name}",
            hint="capability probes need a causal LM contender (hf: or openai:); skip probes for classifiers",
        )
