"""Text metrics against their reference packages on real data (tests/data/text, see SOURCES.md).

ROUGE vs Google's rouge-score, BLEU/TER/chrF vs sacrebleu (corpus, sentence and resampled
corpus scores), all with several references where the data has them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from tunecheck.examples import Example
from tunecheck.metrics import score_outputs
from tunecheck.metrics.mt import bleu_from_stats, reference_streams, ter_from_stats
from tunecheck.metrics.rouge import rouge
from tunecheck.spec import ParserSpec

DATA = Path(__file__).resolve().parents[1] / "data" / "text"
TYPES = {"rouge1": "rouge1", "rouge2": "rouge2", "rougeL": "rouge_l", "rougeLsum": "rouge_lsum"}


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def _summarisation_pairs() -> list[tuple[str, str, list[str], str]]:
    """(set, prediction, references, id): every pair of the two summarisation sets, three ways."""
    pairs = []
    for r in _rows("scitldr_300.jsonl"):
        # lead sentences vs all TLDRs (multi-reference); the author TLDR vs the reviewers' TLDRs
        pairs.append(("scitldr-lead", r["lead2"], r["summaries"], r["id"]))
        pairs.append(("scitldr-author", r["summaries"][0], r["summaries"][1:], r["id"]))
    for r in _rows("billsum_60.jsonl"):
        pairs.append(("billsum-lead", r["lead"], [r["summary"]], r["id"]))
        pairs.append(("billsum-title", r["title"], [r["summary"]], r["id"]))
    return pairs


PAIRS = _summarisation_pairs()


@pytest.mark.slow
@pytest.mark.parametrize("use_stemmer", [False, True])
def test_rouge_identical_to_rouge_score_on_every_pair(use_stemmer):
    scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=use_stemmer)
    expected = {t: np.zeros((len(PAIRS), 3)) for t in TYPES}
    for k, (_, pred, refs, _) in enumerate(PAIRS):
        result = scorer.score_multi(refs, pred)
        for t in TYPES:
            expected[t][k] = (result[t].precision, result[t].recall, result[t].fmeasure)
    preds = [p[1] for p in PAIRS]
    refs = [p[2] for p in PAIRS]
    for t in TYPES:
        ours = rouge(preds, refs, t, use_stemmer=use_stemmer)  # type: ignore[arg-type]
        # identical, not close: the same arithmetic on the same counts
        np.testing.assert_array_equal(ours, expected[t], err_msg=f"{t}, stemmer={use_stemmer}")
    # the data really exercises the multi-sentence and multi-reference paths
    assert sum("\n" in p for p in preds) > 300 and sum(len(r) > 1 for r in refs) > 250


def test_rouge_metrics_through_score_outputs_with_options():
    pairs = PAIRS[::4]
    examples = [Example(id=f"{s}-{i}", input="x", reference=refs) for s, _, refs, i in pairs]
    preds = [p[1] for p in pairs]
    scorer = rouge_scorer.RougeScorer(["rougeL", "rouge2"], use_stemmer=True)
    want = [scorer.score_multi(p[2], p[1]) for p in pairs]
    want_l = [w["rougeL"].fmeasure for w in want]
    want_2r = [w["rouge2"].recall for w in want]
    scores = score_outputs(
        ["rouge_l", "rouge2"], preds, examples, ParserSpec(),
        options={"rouge_l": {"use_stemmer": True}, "rouge2": {"use_stemmer": True, "measure": "recall"}},
    )  # fmt: skip
    np.testing.assert_array_equal(scores["rouge_l"].per_example, want_l)
    np.testing.assert_array_equal(scores["rouge2"].per_example, want_2r)
    assert scores["rouge_l"].value == pytest.approx(np.mean(want_l))
    assert scores["rouge_l"].kind == "continuous" and scores["rouge_l"].higher_is_better


def test_rouge_multi_reference_rule_is_score_multi():
    # the best reference by F-measure decides, per ROUGE type; ties keep the first
    out = rouge(["a b c"], [["x y", "a b c d", "a b"]], "rouge1")
    assert out[0, 2] == pytest.approx(2 * 1 * 0.75 / 1.75)
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    want = scorer.score_multi(["x y", "a b c d", "a b"], "a b c")["rouge1"]
    assert tuple(out[0]) == (want.precision, want.recall, want.fmeasure)


# --------------------------------------------------------------------------- sacrebleu


def _translation_systems() -> tuple[list[Example], dict[str, list[str]]]:
    rows = _rows("ntrex_en_de_300.jsonl")
    examples = [Example(id=str(r["id"]), input=r["source"], reference=r["target"]) for r in rows]
    dropped = [" ".join(w for j, w in enumerate(r["target"].split()) if j % 5 != 4) for r in rows]
    copied = [r["source"] for r in rows]  # a copy-through "system": English left as is
    return examples, {"drop-every-5th-word": dropped, "copy-source": copied}


def _multi_ref() -> tuple[list[Example], list[str]]:
    rows = _rows("scitldr_300.jsonl")[:80]  # TER's shift search is slow on long texts
    examples = [Example(id=r["id"], input="x", reference=r["summaries"][1:]) for r in rows]
    return examples, [r["summaries"][0] for r in rows]


@pytest.mark.slow
def test_bleu_ter_chrf_identical_to_sacrebleu():
    examples, systems = _translation_systems()
    refs = [[e.reference for e in examples]]
    for name, hyps in systems.items():
        s = score_outputs(["bleu", "ter", "chrf"], hyps, examples, ParserSpec())
        assert s["bleu"].value * 100 == pytest.approx(
            sacrebleu.corpus_bleu(hyps, refs).score, abs=1e-9
        ), name
        assert s["ter"].value * 100 == pytest.approx(
            sacrebleu.corpus_ter(hyps, refs).score, abs=1e-9
        ), name
        assert s["chrf"].value * 100 == pytest.approx(
            sacrebleu.corpus_chrf(hyps, refs).score, abs=1e-9
        ), name
        sent_bleu = [
            sacrebleu.sentence_bleu(h, [r]).score / 100 for h, r in zip(hyps, refs[0], strict=True)
        ]
        sent_ter = [
            sacrebleu.sentence_ter(h, [r]).score / 100 for h, r in zip(hyps, refs[0], strict=True)
        ]
        np.testing.assert_allclose(s["bleu"].per_example, sent_bleu, rtol=0, atol=1e-12)
        np.testing.assert_allclose(s["ter"].per_example, sent_ter, rtol=0, atol=1e-12)
        assert not s["ter"].higher_is_better and s["ter"].kind == "corpus"
    # the two systems differ a lot: the identity is not a coincidence of one regime
    assert (
        score_outputs(["bleu"], systems["copy-source"], examples, ParserSpec())["bleu"].value < 0.1
    )


def test_resampled_corpus_scores_equal_sacrebleu_on_the_resample():
    examples, systems = _translation_systems()
    hyps = systems["drop-every-5th-word"]
    s = score_outputs(["bleu", "ter"], hyps, examples, ParserSpec())
    rng = np.random.default_rng(7)
    for _ in range(5):
        idx = rng.integers(0, len(hyps), size=len(hyps))
        h = [hyps[i] for i in idx]
        r = [[examples[i].reference for i in idx]]
        bleu = bleu_from_stats(s["bleu"].corpus.stats[idx].sum(axis=0))[0]
        ter = ter_from_stats(s["ter"].corpus.stats[idx].sum(axis=0))[0]
        assert bleu * 100 == pytest.approx(sacrebleu.corpus_bleu(h, r).score, abs=1e-9)
        assert ter * 100 == pytest.approx(sacrebleu.corpus_ter(h, r).score, abs=1e-9)
        # and the same resample through MetricScores.subset of ids (what the slices use)
        ids = list(dict.fromkeys(examples[i].id for i in idx))
        sub = s["bleu"].subset(ids)
        h2 = [hyps[int(i)] for i in ids]
        r2 = [[examples[int(i)].reference for i in ids]]
        assert sub.value * 100 == pytest.approx(sacrebleu.corpus_bleu(h2, r2).score, abs=1e-9)


@pytest.mark.slow
def test_multi_reference_bleu_ter_chrf_follow_sacrebleu():
    examples, hyps = _multi_ref()
    streams = reference_streams(examples)
    assert len(streams) == 3 and any(x is None for x in streams[2])  # 1-3 references per row
    s = score_outputs(["bleu", "ter", "chrf"], hyps, examples, ParserSpec())
    assert s["bleu"].value * 100 == pytest.approx(
        sacrebleu.corpus_bleu(hyps, streams).score, abs=1e-9
    )
    assert s["ter"].value * 100 == pytest.approx(
        sacrebleu.corpus_ter(hyps, streams).score, abs=1e-9
    )
    assert s["chrf"].value * 100 == pytest.approx(
        sacrebleu.corpus_chrf(hyps, streams).score, abs=1e-9
    )
    one_ref = score_outputs(
        ["bleu"], hyps, [Example(id=e.id, input="x", reference=e.reference[0]) for e in examples],
        ParserSpec(),
    )["bleu"]  # fmt: skip
    assert s["bleu"].value > one_ref.value  # more references, more matches: BLEU's rule


def test_bleu_options_reach_sacrebleu():
    examples, systems = _translation_systems()
    hyps = [h.upper() for h in systems["drop-every-5th-word"]]
    refs = [[e.reference for e in examples]]
    s = score_outputs(["bleu"], hyps, examples, ParserSpec(), options={"bleu": {"lowercase": True}})
    assert s["bleu"].value * 100 == pytest.approx(
        sacrebleu.corpus_bleu(hyps, refs, lowercase=True).score, abs=1e-9
    )
    cased = score_outputs(["bleu"], hyps, examples, ParserSpec())["bleu"].value
    assert cased < s["bleu"].value


_WORDS = ["a", "b", "c", "cats", "running", "Ran", "the", "É", "x1", "--", "İs", "ß"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pred=st.lists(st.lists(st.sampled_from(_WORDS), max_size=9), max_size=4),
    refs=st.lists(
        st.lists(st.lists(st.sampled_from(_WORDS), max_size=9), max_size=4), min_size=1, max_size=3
    ),
    stem=st.booleans(),
)
def test_rouge_identical_on_tie_heavy_random_texts(pred, refs, stem):
    # few distinct words, many repeats: many longest common subsequences, so ROUGE-Lsum's
    # union depends on exactly which one is read out; punctuation/unicode test the tokenizer
    def text(sents):
        return "\n".join(" ".join(s) for s in sents)

    p, rs = text(pred), [text(r) for r in refs]
    scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=stem)
    want = scorer.score_multi(rs, p)
    for t in TYPES:
        got = rouge([p], [rs], t, use_stemmer=stem)[0]  # type: ignore[arg-type]
        assert tuple(got) == (want[t].precision, want[t].recall, want[t].fmeasure), t
