"""ROUGE speed: tunecheck's ROUGE-1/2/L/Lsum vs Google's rouge-score on 10,000 real pairs.

Pairs: two-sentence windows of SciTLDR abstracts (one sentence per line, so ROUGE-Lsum sees
two sentences) against each of the paper's reference TLDRs, from ../shared/data/tasks
(falls back to the smaller copy in tests/data/text, and says so). Both sides compute all
four ROUGE types, with and without stemming; results must be identical. Target: at least
5x faster than rouge-score. Timings are the best of a few alternating runs, side by side
in one process, so the ratio holds on a shared machine.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to the checkout (a git worktree sits one level deeper)
SHARED = (
    next(
        (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.exists()),
        ROOT.parent / "shared",
    )
    / "data"
    / "tasks"
    / "scitldr_a_test_sample.jsonl"
)
LOCAL = ROOT / "tests" / "data" / "text" / "scitldr_300.jsonl"
N_PAIRS = 10_000
TYPES = {"rouge1": "rouge1", "rouge2": "rouge2", "rougeL": "rougeL", "rougeLsum": "rougeLsum"}
TARGET = 5.0


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def load_pairs(n: int = N_PAIRS) -> tuple[list[str], list[str], str]:
    """(predictions, references, source) of ``n`` single-reference pairs."""
    preds: list[str] = []
    refs: list[str] = []
    if SHARED.exists():
        rows = [json.loads(x) for x in SHARED.read_text(encoding="utf-8").splitlines()]
        source = str(SHARED)
        for r in rows:
            sents = _sentences(r["document"])
            for i in range(max(len(sents) - 1, 1)):
                window = "\n".join(sents[i : i + 2])
                for ref in r["summaries"]:
                    preds.append(window)
                    refs.append(ref)
    else:
        print(f"  {SHARED} is missing: using the 300-row copy in {LOCAL} (pairs repeat)")
        rows = [json.loads(x) for x in LOCAL.read_text(encoding="utf-8").splitlines()]
        source = str(LOCAL)
        for r in rows:
            for ref in r["summaries"]:
                preds.append(r["lead2"])
                refs.append(ref)
    while len(preds) < n:  # only with the small fallback copy
        preds, refs = preds + preds, refs + refs
    return preds[:n], refs[:n], source


def _theirs(preds: list[str], refs: list[str], stem: bool) -> dict[str, np.ndarray]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=stem)
    out = {t: np.zeros((len(preds), 3)) for t in TYPES}
    for k, (p, r) in enumerate(zip(preds, refs, strict=True)):
        s = scorer.score(r, p)
        for t in TYPES:
            out[t][k] = (s[t].precision, s[t].recall, s[t].fmeasure)
    return out


def _ours(preds: list[str], refs: list[str], stem: bool) -> dict[str, np.ndarray]:
    from tunecheck.metrics.rouge import RougeTokenizer, rouge

    tok = RougeTokenizer(stem)  # one per scoring call, as score_outputs shares it across types
    multi = [[r] for r in refs]
    return {t: rouge(preds, multi, t, tokenizer=tok) for t in TYPES}  # type: ignore[arg-type]


def main() -> bool:
    preds, refs, source = load_pairs()
    print(f"{len(preds):,} pairs from {source}; all four ROUGE types per pair")
    ok = True
    for stem in (False, True):
        t_theirs = t_ours = float("inf")
        theirs = ours = None
        for _ in range(2):  # alternate, keep the best of each: fair on a busy machine
            start = time.perf_counter()
            theirs = _theirs(preds, refs, stem)
            t_theirs = min(t_theirs, time.perf_counter() - start)
            start = time.perf_counter()
            ours = _ours(preds, refs, stem)
            t_ours = min(t_ours, time.perf_counter() - start)
        assert theirs is not None and ours is not None
        same = all(np.array_equal(ours[t], theirs[t]) for t in TYPES)
        ratio = t_theirs / t_ours
        met = same and ratio >= TARGET
        ok &= met
        print(
            f"  stemming {'on ' if stem else 'off'}: rouge-score {t_theirs:7.2f} s   tunecheck "
            f"{t_ours:6.2f} s   speed-up {ratio:5.1f}x (target >= {TARGET:.0f}x)   "
            f"identical: {'yes' if same else 'NO'}   {'met' if met else 'MISSED'}"
        )
    return ok


if __name__ == "__main__":
    main()
