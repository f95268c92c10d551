"""BERTScore vs the bert-score package and semantic similarity vs sentence-transformers.

Both with the offline all-MiniLM-L6-v2 (the default encoder), on real multi-reference
SciTLDR rows and NTREX translations (tests/data/text).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tunecheck.errors import SpecError
from tunecheck.examples import Example
from tunecheck.metrics import score_outputs
from tunecheck.metrics.embedding import default_encoder
from tunecheck.spec import ParserSpec

DATA = Path(__file__).resolve().parents[1] / "data" / "text"
BASELINE = DATA / "minilm_baseline.csv"


def _rows(name: str, n: int) -> list[dict]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def scitldr():
    rows = _rows("scitldr_300.jsonl", 16)
    examples = [Example(id=r["id"], input="x", reference=r["summaries"][1:]) for r in rows]
    return examples, [r["summaries"][0] for r in rows]


@pytest.fixture(scope="module")
def minilm_encoder() -> str:
    """The offline MiniLM folder (every test using it loads that real model)."""
    return default_encoder()


def _reference(cands, refs, encoder, **kw):
    from bert_score import score as bert_score

    p, r, f = bert_score(cands, refs, model_type=encoder, nthreads=0, batch_size=64, **kw)
    return np.stack([p.numpy(), r.numpy(), f.numpy()], axis=1)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"idf": True},
        {"layer": 3, "measure": "recall"},
        {"rescale_with_baseline": True, "baseline_path": str(BASELINE), "measure": "precision"},
    ],
    ids=["default", "idf", "layer3-recall", "rescaled"],
)
def test_bertscore_matches_bert_score_package(scitldr, minilm_encoder, options):
    examples, cands = scitldr
    refs = [e.reference for e in examples]
    ours = score_outputs(
        ["bertscore"], cands, examples, ParserSpec(), options={"bertscore": options}
    )
    s = ours["bertscore"]
    want = _reference(
        cands, refs, minilm_encoder, num_layers=options.get("layer", 6), idf=options.get("idf", False),
        rescale_with_baseline=options.get("rescale_with_baseline", False),
        baseline_path=options.get("baseline_path"), lang="en",
    )  # fmt: skip
    column = {"precision": 0, "recall": 1, "f1": 2}[options.get("measure", "f1")]
    np.testing.assert_allclose(s.per_example, want[:, column], rtol=0, atol=1e-6)
    assert s.details["f1"] == pytest.approx(want[:, 2].mean(), abs=1e-6)
    assert s.details["layer"] == options.get("layer", 6)
    if options.get("rescale_with_baseline"):
        assert s.per_example.min() < 0.5  # rescaled scores spread out below the raw ~0.6-0.9


def test_bertscore_multi_reference_is_max_over_references(scitldr, minilm_encoder):
    examples, cands = scitldr
    one = [Example(id=e.id, input="x", reference=e.reference[0]) for e in examples]
    multi = score_outputs(["bertscore"], cands, examples, ParserSpec())["bertscore"].per_example
    single = score_outputs(["bertscore"], cands, one, ParserSpec())["bertscore"].per_example
    assert np.all(multi >= single - 1e-5) and np.any(multi > single + 1e-4)


def test_bertscore_idf_uses_every_reference_even_when_a_backend_failed(scitldr, minilm_encoder):
    examples, cands = scitldr
    with_error = [None, *cands[1:]]
    s = score_outputs(
        ["bertscore"], with_error, examples, ParserSpec(), options={"bertscore": {"idf": True}}
    )
    assert s["bertscore"].details["errors"] == 1 and s["bertscore"].n == len(examples) - 1
    # idf from all references (as for a contender without errors), not from the 15 answered
    full = score_outputs(
        ["bertscore"], cands, examples, ParserSpec(), options={"bertscore": {"idf": True}}
    )
    np.testing.assert_allclose(
        s["bertscore"].per_example, full["bertscore"].per_example[1:], atol=1e-6
    )


@pytest.mark.slow
def test_semantic_similarity_matches_sentence_transformers(minilm_encoder):
    from sentence_transformers import SentenceTransformer, util

    rows = _rows("ntrex_en_de_300.jsonl", 30)
    examples = [
        Example(id=str(r["id"]), input="x", reference=[r["target"], r["source"]]) for r in rows
    ]
    outputs = [r["source"].lower() for r in rows]
    s = score_outputs(["semantic_similarity"], outputs, examples, ParserSpec())[
        "semantic_similarity"
    ]
    model = SentenceTransformer(minilm_encoder, device="cpu")
    want = []
    for out, ex in zip(outputs, examples, strict=True):
        sims = util.cos_sim(model.encode([out]), model.encode(ex.reference))
        want.append(float(sims.max()))
    np.testing.assert_allclose(s.per_example, want, rtol=0, atol=1e-6)
    assert s.value == pytest.approx(np.mean(want), abs=1e-6)


def test_missing_encoder_folder_is_a_spec_error(tmp_path):
    ex = [Example(id="a", input="x", reference="b")]
    with pytest.raises(SpecError, match=r"bertscore\.model.*does not exist"):
        score_outputs(["bertscore"], ["b"], ex, ParserSpec(),
                      options={"bertscore": {"model": str(tmp_path / "nope")}})  # fmt: skip
    with pytest.raises(SpecError, match=r"baseline_path"):
        score_outputs(["bertscore"], ["b"], ex, ParserSpec(),
                      options={"bertscore": {"rescale_with_baseline": True}})  # fmt: skip
    with pytest.raises(SpecError, match=r"semantic_similarity\.modle: unknown option"):
        score_outputs(["semantic_similarity"], ["b"], ex, ParserSpec(),
                      options={"semantic_similarity": {"modle": "x"}})  # fmt: skip
