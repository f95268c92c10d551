"""ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum, identical to Google's ``rouge-score``.

Same tokenisation (lower-case, non-alphanumerics to spaces, optional Porter stemming
of words longer than 3 characters), same n-gram clipping, same LCS and the same
summary-level union LCS (sentences split on newlines) as ``rouge_score.rouge_scorer``;
a test checks every pair of real summarisation sets against it. Faster because:

* words are mapped to integer ids once and stems are memoised (nltk's Porter stemmer
  dominates rouge-score's time with stemming on);
* the LCS length for ROUGE-L comes from rapidfuzz's bit-parallel ``LCSseq`` (the
  length of a longest common subsequence is unique, so any exact algorithm agrees);
* ROUGE-Lsum needs rouge-score's *particular* LCS (its backtracking order decides
  which tokens enter the union), so it keeps rouge-score's table and backtrack but
  skips reference tokens absent from the candidate sentence: such rows copy the row
  above and the backtrack always steps over them, so the result is unchanged.

Several references per example: rouge-score's ``score_multi`` rule, per ROUGE type
the reference with the highest F-measure is used (first on ties).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from tunecheck.examples import Example
from tunecheck.metrics.base import MetricScores, ScoringContext, metric
from tunecheck.metrics.options import MetricOptions, references

RougeType = Literal["rouge1", "rouge2", "rougeL", "rougeLsum"]
_ALNUM_RUN = re.compile(r"[a-z0-9]+")
_VALID = re.compile(r"^[a-z0-9]+$")


class RougeOptions(MetricOptions):
    """``use_stemmer``: Porter-stem words (rouge-score's option); ``measure``: which of the
    chosen reference's precision/recall/F-measure is the score (default F-measure)."""

    use_stemmer: bool = False
    measure: Literal["fmeasure", "precision", "recall"] = "fmeasure"


class RougeTokenizer:
    """rouge-score's default tokenizer, returning integer token ids, with memoised stems."""

    def __init__(self, use_stemmer: bool = False) -> None:
        self._stem: Callable[[str], str] | None = None
        if use_stemmer:
            from nltk.stem import porter

            self._stem = porter.PorterStemmer().stem
        self._ids: dict[str, int] = {}  # raw word -> id of its (stemmed) token; -1: dropped
        self._vocab: dict[str, int] = {}
        self._texts: dict[str, list[int]] = {}
        self._sentences: dict[str, list[list[int]]] = {}

    def _word(self, word: str) -> int:
        tok = self._stem(word) if self._stem is not None and len(word) > 3 else word
        wid = -1 if not _VALID.match(tok) else self._vocab.setdefault(tok, len(self._vocab))
        self._ids[word] = wid
        return wid

    def tokens(self, text: str) -> list[int]:
        """rouge-score's tokens of ``text`` as ids (memoised: ROUGE-1/2/L/Lsum share them)."""
        hit = self._texts.get(text)
        if hit is None:
            hit = self._texts[text] = self._tokenize(text)
        return hit

    def _tokenize(self, text: str) -> list[int]:
        ids = self._ids
        out = []
        # the maximal [a-z0-9] runs of the lower-cased text: what rouge-score's
        # "non-alphanumerics to spaces, then split" leaves
        for word in _ALNUM_RUN.findall(text.lower()):
            wid = ids.get(word)
            if wid is None:
                wid = self._word(word)
            if wid >= 0:
                out.append(wid)
        return out

    def sentences(self, text: str) -> list[list[int]]:
        """rougeLsum's sentences: newline-separated, empty lines dropped, then tokenised."""
        hit = self._sentences.get(text)
        if hit is None:
            hit = self._sentences[text] = [self._tokenize(s) for s in text.split("\n") if len(s)]
        return hit


def _prf(hits: float, n_pred: int, n_target: int) -> tuple[float, float, float]:
    precision = hits / n_pred
    recall = hits / n_target
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f


def _ngrams(tokens: list[int], n: int) -> Counter[Any]:
    if n == 1:
        return Counter(tokens)
    if n == 2:
        return Counter(pairwise(tokens))
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def score_ngrams(target: list[int], pred: list[int], n: int) -> tuple[float, float, float]:
    """rouge-score's ROUGE-N (clipped n-gram overlap) as (precision, recall, F)."""
    t, p = _ngrams(target, n), _ngrams(pred, n)
    hits = sum((t & p).values())
    n_pred = max(len(pred) - n + 1, 0)
    n_target = max(len(target) - n + 1, 0)
    return _prf(hits, max(n_pred, 1), max(n_target, 1))


def score_lcs(target: list[int], pred: list[int]) -> tuple[float, float, float]:
    """rouge-score's ROUGE-L: LCS length over prediction / target length."""
    if not target or not pred:
        return 0.0, 0.0, 0.0
    from rapidfuzz.distance import LCSseq

    return _prf(LCSseq.similarity(target, pred), len(pred), len(target))


def _lcs_indices(ref: list[int], can: list[int]) -> list[int]:
    """rouge-score's ``lcs_ind``: positions in ``ref`` of the LCS its backtrack reads out."""
    present = set(can)
    rows = [i for i, t in enumerate(ref) if t in present]
    if not rows:
        return []
    sub = [ref[i] for i in rows]
    from rapidfuzz.distance import LCSseq

    if LCSseq.similarity(sub, can) == len(sub):
        # every remaining reference token is matched: the LCS is unique, no table needed
        return rows
    cols = len(can)
    above = [0] * (cols + 1)
    table = [above]
    for r in sub:
        row = [0]
        left = 0
        for j, c in enumerate(can):
            if r == c:
                left = above[j] + 1
            else:
                up = above[j + 1]
                if up > left:
                    left = up
            row.append(left)
        table.append(row)
        above = row
    i, j = len(sub), cols
    out: list[int] = []
    while i > 0 and j > 0:
        if sub[i - 1] == can[j - 1]:
            out.append(rows[i - 1])
            i -= 1
            j -= 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    out.reverse()
    return out


def score_lcs_summary(target: list[list[int]], pred: list[list[int]]) -> tuple[float, float, float]:
    """rouge-score's ROUGE-Lsum: summary-level union LCS with double counting prevented."""
    if not target or not pred:
        return 0.0, 0.0, 0.0
    m = sum(map(len, target))
    n = sum(map(len, pred))
    if not n or not m:
        return 0.0, 0.0, 0.0
    counts_r: Counter[int] = Counter()
    counts_c: Counter[int] = Counter()
    for s in target:
        counts_r.update(s)
    for s in pred:
        counts_c.update(s)
    hits = 0
    for r in target:
        union: set[int] = set()
        for c in pred:
            union.update(_lcs_indices(r, c))
        for pos in sorted(union):
            tok = r[pos]
            if counts_c[tok] > 0 and counts_r[tok] > 0:
                hits += 1
                counts_c[tok] -= 1
                counts_r[tok] -= 1
    return _prf(hits, n, m)


def rouge(
    predictions: Sequence[str],
    targets: Sequence[Sequence[str]],
    rouge_type: RougeType,
    *,
    use_stemmer: bool = False,
    tokenizer: RougeTokenizer | None = None,
) -> np.ndarray:
    """``(n, 3)`` precision/recall/F per prediction, the best-F reference of each (score_multi)."""
    tok = tokenizer or RougeTokenizer(use_stemmer)
    out = np.zeros((len(predictions), 3))
    for k, (pred, refs) in enumerate(zip(predictions, targets, strict=True)):
        best: tuple[float, float, float] | None = None
        if rouge_type == "rougeLsum":
            p_sents = tok.sentences(pred)
            for ref in refs:
                s = score_lcs_summary(tok.sentences(ref), p_sents)
                if best is None or s[2] > best[2]:
                    best = s
        else:
            p_toks = tok.tokens(pred)
            for ref in refs:
                r_toks = tok.tokens(ref)
                if rouge_type == "rougeL":
                    s = score_lcs(r_toks, p_toks)
                else:
                    s = score_ngrams(r_toks, p_toks, int(rouge_type[5:]))
                if best is None or s[2] > best[2]:
                    best = s
        out[k] = best if best is not None else (0.0, 0.0, 0.0)
    return out


_MEASURE = {"precision": 0, "recall": 1, "fmeasure": 2}


def _rouge_metric(
    name: str, rouge_type: RougeType, outputs: Sequence[str], examples: Sequence[Example],
    ctx: ScoringContext,
) -> MetricScores:  # fmt: skip
    opts: RougeOptions = ctx.options or RougeOptions()
    # one tokenizer (and stem memo) shared by every ROUGE metric of this scoring call
    tok = ctx.cached(
        f"rouge-tokenizer:{opts.use_stemmer}", lambda: RougeTokenizer(opts.use_stemmer)
    )
    prf = rouge([str(o) for o in outputs], [references(e) for e in examples], rouge_type,
                tokenizer=tok)  # fmt: skip
    per_example = prf[:, _MEASURE[opts.measure]]
    return MetricScores(
        name=name,
        value=float(per_example.mean()) if len(per_example) else float("nan"),
        per_example=per_example,
        example_ids=[e.id for e in examples],
        kind="continuous",
        details={
            "rouge_type": rouge_type,
            "measure": opts.measure,
            "use_stemmer": opts.use_stemmer,
            "scale": "0-1 (rouge-score), mean over examples",
        },
    )


@metric("rouge1", kind="continuous", reference=True, options=RougeOptions, length_sensitive=True)
def rouge1(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """ROUGE-1 F-measure (unigram overlap), as rouge-score; mean over examples."""
    return _rouge_metric("rouge1", "rouge1", outputs, examples, ctx)


@metric("rouge2", kind="continuous", reference=True, options=RougeOptions, length_sensitive=True)
def rouge2(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """ROUGE-2 F-measure (bigram overlap), as rouge-score; mean over examples."""
    return _rouge_metric("rouge2", "rouge2", outputs, examples, ctx)


@metric("rouge_l", kind="continuous", reference=True, options=RougeOptions, length_sensitive=True)
def rouge_l(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """ROUGE-L F-measure (longest common subsequence), as rouge-score's ``rougeL``."""
    return _rouge_metric("rouge_l", "rougeL", outputs, examples, ctx)


@metric(
    "rouge_lsum", kind="continuous", reference=True, options=RougeOptions, length_sensitive=True
)
def rouge_lsum(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """ROUGE-Lsum F-measure (summary-level LCS over newline-separated sentences), as
    rouge-score's ``rougeLsum``: put one sentence per line in outputs and references."""
    return _rouge_metric("rouge_lsum", "rougeLsum", outputs, examples, ctx)
