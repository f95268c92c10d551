"""Contamination check speed: hashed n-grams (numpy) vs Python sets of word tuples.

Data: BoolQ validation (CC-BY-SA-3.0) queries with their passages, ~100 words each,
split 80/20 into "train" and "test"; and banking77 train vs test (CC-BY-4.0).
Targets: identical overlaps in every case; on long texts (BoolQ) the hashed
implementation is at least 2x faster end to end (measured ~3.3x on a shared
2-core machine; the margin absorbs noise from other processes). On short texts
(banking77, mostly under 13 words) only exact matching applies, and the hashed
version must merely not be slower (>= 0.8x; measured ~1.4x).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import Counter

from bench import data_file

TARGETS = {"boolq 80/20": 2.0, "banking77": 0.8}


def naive(
    train, test, ngram: int = 13, threshold: float = 0.5
) -> list[tuple[str, str, str, float]]:
    """Reference: Python sets of word tuples (same definition as tunecheck.data.contamination)."""

    def words(t: str) -> list[str]:
        return re.findall(r"\w+", unicodedata.normalize("NFKC", t).casefold())

    def grams(w: list[str]) -> set[tuple[str, ...]]:
        return {tuple(w[k : k + ngram]) for k in range(len(w) - ngram + 1)}

    train_words = [words(e.input) for e in train]
    exact: dict[str, int] = {}
    for i, w in enumerate(train_words):
        if w:
            exact.setdefault(" ".join(w), i)
    index: dict[tuple[str, ...], set[int]] = {}
    for i, w in enumerate(train_words):
        for g in grams(w):
            index.setdefault(g, set()).add(i)
    out = []
    for e in test:
        w = words(e.input)
        if w and " ".join(w) in exact:
            out.append((e.id, train[exact[" ".join(w)]].id, "exact", 1.0))
            continue
        g = grams(w)
        if not g:
            continue
        shared = [x for x in g if x in index]
        frac = len(shared) / len(g)
        if frac >= threshold:
            counts = Counter(i for x in shared for i in index[x])
            best = min(counts, key=lambda d: (-counts[d], d))
            out.append((e.id, train[best].id, "near", round(frac, 4)))
    return out


def _time(fn, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> bool:
    from tunecheck.data import find_contamination, load_examples
    from tunecheck.examples import Example
    from tunecheck.spec import FieldMap

    boolq = load_examples(
        data_file("probes", "boolq_val.jsonl"), FieldMap(input="query", reference=None)
    )
    # each query holds the passage: ~100+ words, plenty of 13-grams; passages repeat across questions
    docs = [Example(id=e.id, input=e.input) for e in boolq]
    cut = int(len(docs) * 0.8)
    cases = {
        "boolq 80/20": (docs[:cut], docs[cut:]),
        "banking77": tuple(
            load_examples(
                data_file("tasks", f"banking77_{s}.csv"), FieldMap(input="text", label="category")
            )
            for s in ("train", "test")
        ),
    }
    ok = True
    print(
        f"{'case':14} {'train':>6} {'test':>6} {'found':>6} {'naive s':>8} {'hashed s':>9} {'speed-up':>9}"
    )
    for name, (train, test) in cases.items():
        t_fast, fast = _time(lambda tr=train, te=test: find_contamination(tr, te))
        t_naive, ref = _time(lambda tr=train, te=test: naive(tr, te))
        same = [(o.test_id, o.other_id, o.kind, o.score) for o in fast] == ref
        ratio = t_naive / t_fast
        print(
            f"{name:14} {len(train):>6} {len(test):>6} {len(fast):>6} {t_naive:>8.3f} {t_fast:>9.3f} {ratio:>8.1f}x  identical={same}"
        )
        ok &= same and ratio >= TARGETS[name]
    print(
        "targets: identical results; speed-up >= "
        + ", ".join(f"{v:g}x ({k})" for k, v in TARGETS.items())
    )
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
