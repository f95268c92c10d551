"""Does the test split overlap the training data?

Two checks, on the input text of each example:

* **exact duplicate**: the same words after normalisation (Unicode NFKC,
  case-folded, punctuation and whitespace dropped, so ``top-up`` == ``top up``);
* **near duplicate**: the fraction of the test example's distinct word n-grams
  (default 13, as in GPT-3's and lm-evaluation-harness's decontamination) that
  occur anywhere in the training texts is at least ``threshold``. Texts shorter
  than ``ngram`` words have no n-grams and are covered by the exact check only.

N-grams are hashed to 64-bit integers (a random 64-bit code per word, combined
polynomially) and looked up with a sorted numpy array, which is much faster than
Python sets of word tuples and gives the same answer (see ``bench/bench_data.py``
and ``tests/data/test_data_contamination.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from tunecheck.errors import DataError
from tunecheck.examples import Example

_WORD = re.compile(r"\w+")
_SNIPPET = 160


def words(text: str) -> list[str]:
    """The normalised words of a text (NFKC, case-folded, punctuation dropped)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalized_text(text: str) -> str:
    """The text exact-duplicate detection compares: its normalised words joined by spaces."""
    return " ".join(words(text))


@dataclass(frozen=True)
class Overlap:
    """One test example found in another split.

    ``kind`` is ``"exact"`` or ``"near"``; ``score`` the fraction of the test
    example's n-grams found in that split (1.0 for exact duplicates);
    ``other_id`` the example of ``split`` it overlaps most.
    """

    test_id: str
    other_id: str
    split: str
    kind: str
    score: float
    test_text: str
    other_text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(example: Example) -> str:
    from tunecheck.data.load import input_text

    return input_text(example.input)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


_NON_WORD = re.compile(r"[^\w\x00]+")
_MULT = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio): mixes word codes into n-gram codes


# ASCII fast path: for ASCII text NFKC changes nothing, case folding is lower(), and
# \w is [A-Za-z0-9_]; a byte translation table does the regex's work ~10x faster.
_ASCII_TABLE = (
    bytes(c if (chr(c).isalnum() or c in (0, 95)) else 32 for c in range(128)) + b" " * 128
)


def _normalize_many(texts: list[str]) -> list[str]:
    """``normalized_text`` of every text, done on joined strings (C speed, not per text)."""
    texts = [t.replace("\x00", " ") for t in texts]
    out: list[str] = [""] * len(texts)
    ascii_idx = [i for i, t in enumerate(texts) if t.isascii()]
    other_idx = [i for i, t in enumerate(texts) if not t.isascii()]
    if ascii_idx:
        joined = "\x00".join(texts[i] for i in ascii_idx).encode("ascii")
        parts = joined.translate(_ASCII_TABLE).decode("ascii").lower().split("\x00")
        for i, part in zip(ascii_idx, parts, strict=True):
            out[i] = " ".join(part.split())
    if other_idx:
        # \x00 survives NFKC and case folding and is not a word character: a safe separator
        joined_text = "\x00".join(texts[i] for i in other_idx)
        norm = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", joined_text).casefold())
        for i, part in zip(other_idx, norm.split("\x00"), strict=True):
            out[i] = part.strip()
    return out


def _gram_hashes(docs: list[str], n: int):
    """(hash, doc index) of every word n-gram inside one normalised document.

    A word's code is Python's 64-bit string hash (consistent within a process,
    which is all a comparison needs); an n-gram's code is a polynomial of its
    words' codes modulo 2**64, computed for all positions at once with numpy.
    """
    import numpy as np

    tokens = " ".join(docs).split()
    lens = np.fromiter(
        (d.count(" ") + 1 if d else 0 for d in docs), dtype=np.int64, count=len(docs)
    )
    total = len(tokens)
    count = total - n + 1
    if count <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    codes = np.fromiter(map(hash, tokens), dtype=np.int64, count=total).view(np.uint64)
    acc = np.zeros(count, dtype=np.uint64)
    mult = np.uint64(_MULT)
    with np.errstate(over="ignore"):
        for k in range(n):
            acc = acc * mult + codes[k : k + count]
    doc_of = np.repeat(np.arange(len(docs)), lens)
    starts = np.cumsum(lens) - lens
    pos = np.arange(count) - starts[doc_of[:count]]
    valid = pos <= lens[doc_of[:count]] - n
    return acc[valid], doc_of[:count][valid]


def find_contamination(
    train: list[Example],
    test: list[Example],
    *,
    ngram: int = 13,
    threshold: float = 0.5,
    split: str = "train",
) -> list[Overlap]:
    """Test examples that duplicate (exactly or nearly) examples of ``train``.

    Returns one :class:`Overlap` per contaminated test example, in test order:
    exact duplicates first checked, then near duplicates whose n-gram overlap
    is ``>= threshold``.
    """
    import numpy as np

    if ngram < 1:
        raise DataError(f"ngram must be >= 1, got {ngram}", where="ngram")
    if not 0.0 < threshold <= 1.0:
        raise DataError(
            f"the near-duplicate threshold must be in (0, 1], got {threshold}",
            where="threshold",
            hint="e.g. 0.5: half of a test example's n-grams seen in training",
        )
    train_texts = [_text(e) for e in train]
    test_texts = [_text(e) for e in test]
    train_norm = _normalize_many(train_texts)
    test_norm = _normalize_many(test_texts)

    exact_index: dict[str, int] = {}
    for i, t in enumerate(train_norm):
        if t:
            exact_index.setdefault(t, i)

    found: dict[int, Overlap] = {}
    for j, t in enumerate(test_norm):
        first = exact_index.get(t) if t else None
        if first is not None:
            found[j] = Overlap(
                test[j].id,
                train[first].id,
                split,
                "exact",
                1.0,
                _snippet(test_texts[j]),
                _snippet(train_texts[first]),
            )

    tr_h, tr_doc = _gram_hashes(train_norm, ngram)
    te_h, te_doc = _gram_hashes(test_norm, ngram)
    if len(te_h) and len(tr_h):
        # distinct n-grams per test document
        order = np.lexsort((te_h, te_doc))
        te_h, te_doc = te_h[order], te_doc[order]
        keep = np.ones(len(te_h), dtype=bool)
        keep[1:] = (te_h[1:] != te_h[:-1]) | (te_doc[1:] != te_doc[:-1])
        te_h, te_doc = te_h[keep], te_doc[keep]
        # every (hash, train doc) once, sorted by hash
        order = np.lexsort((tr_doc, tr_h))
        tr_h, tr_doc = tr_h[order], tr_doc[order]
        keep = np.ones(len(tr_h), dtype=bool)
        keep[1:] = (tr_h[1:] != tr_h[:-1]) | (tr_doc[1:] != tr_doc[:-1])
        tr_h, tr_doc = tr_h[keep], tr_doc[keep]
        left = np.searchsorted(tr_h, te_h, side="left")
        hit = (left < len(tr_h)) & (tr_h[np.minimum(left, len(tr_h) - 1)] == te_h)
        totals = np.bincount(te_doc, minlength=len(test))
        hits = np.bincount(te_doc, weights=hit.astype(np.float64), minlength=len(test))
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(totals > 0, hits / np.maximum(totals, 1), 0.0)
        right = np.searchsorted(tr_h, te_h, side="right")
        doc_start = np.searchsorted(te_doc, np.arange(len(test)), side="left")
        doc_end = np.searchsorted(te_doc, np.arange(len(test)), side="right")
        for j in map(int, np.flatnonzero(frac >= threshold)):
            if j in found:
                continue
            counts: Counter[int] = Counter()
            for g in range(doc_start[j], doc_end[j]):
                if not hit[g]:
                    continue
                counts.update(tr_doc[left[g] : right[g]].tolist())
            best = min(counts, key=lambda d: (-counts[d], d))
            found[j] = Overlap(
                test[j].id,
                train[best].id,
                split,
                "near",
                round(float(frac[j]), 4),
                _snippet(test_texts[j]),
                _snippet(train_texts[best]),
            )
    return [found[j] for j in sorted(found)]
