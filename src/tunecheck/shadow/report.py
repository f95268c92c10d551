"""``tunecheck shadow report``: what the logged production/candidate pairs say.

Over the complete pairs of a session (both sides answered or failed): error rates
(paired difference, McNemar's exact test), latency and length differences (paired
bootstrap intervals from :mod:`tunecheck.stats`), reference-free measures of each
answer (registered in :data:`REFERENCE_FREE`), how often the two agree, and the
pairs where they disagree most. There are no references on live traffic, so no task
metric; a pairwise judge can be plugged in (:class:`PairwiseJudge`): any callable
that scores the candidate's answer against production's for one request.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from tunecheck.stats import bootstrap_mean_diff, mcnemar_exact


class PairwiseJudge(Protocol):
    """Scores the candidate against production on one request.

    Returns 1.0 (candidate better), 0.0 (production better), 0.5 (tie) or anything in
    between; ``None`` when the judge could not decide (counted, never a win or loss).
    A judge that looks at both orders should return 0.5 when its verdict flips.
    """

    def __call__(
        self, request: dict[str, Any], production: str, candidate: str
    ) -> float | None: ...


@dataclass(frozen=True)
class ReferenceFree:
    """A per-answer measure that needs no reference (registered in REFERENCE_FREE)."""

    name: str
    fn: Callable[[str], float]
    higher_is_better: bool | None  # None: informative only
    description: str


def _is_json(text: str) -> float:
    t = text.strip()
    if t.startswith("```"):
        t = t.strip("`").removeprefix("json").strip()
    try:
        json.loads(t)
    except ValueError:
        return 0.0
    return 1.0 if t[:1] in "[{" else 0.0


REFERENCE_FREE: dict[str, ReferenceFree] = {}


def reference_free(
    name: str, *, higher_is_better: bool | None, description: str
) -> Callable[[Callable[[str], float]], Callable[[str], float]]:
    """Register a reference-free per-answer measure: ``@reference_free("name", ...)``."""

    def wrap(fn: Callable[[str], float]) -> Callable[[str], float]:
        REFERENCE_FREE[name] = ReferenceFree(name, fn, higher_is_better, description)
        return fn

    return wrap


reference_free("empty", higher_is_better=False, description="share of empty answers")(
    lambda t: float(not t.strip())
)
reference_free("valid_json", higher_is_better=True, description="share that parses as JSON")(
    _is_json
)
reference_free("words", higher_is_better=None, description="words per answer")(
    lambda t: float(len(t.split()))
)


@dataclass
class PairedDiff:
    """Candidate minus production over the same requests, with a 95% bootstrap interval."""

    name: str
    n: int
    production: float
    candidate: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float | None = None
    note: str = ""


@dataclass
class Disagreement:
    request_id: str
    request: str
    production: str
    candidate: str
    similarity: float | None
    why: str


@dataclass
class ShadowReport:
    """Everything ``tunecheck shadow report`` prints (``to_dict`` for ``--json``)."""

    sessions: list[dict[str, Any]]
    counts: dict[str, int]
    pairs: int
    content: bool
    errors: PairedDiff | None = None
    latency_ms: PairedDiff | None = None
    latency_median_ms: dict[str, float] = field(default_factory=dict)
    length: PairedDiff | None = None
    identical: float | None = None
    similarity_chrf: float | None = None
    reference_free: list[PairedDiff] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    disagreements: list[Disagreement] = field(default_factory=list)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failed(row: dict[str, Any], side: str) -> bool:
    status = row[f"{side}_status"]
    return status is None or status >= 400 or row[f"{side}_error"] is not None


def _diff(name: str, cand: np.ndarray, prod: np.ndarray, **extra: Any) -> PairedDiff | None:
    if len(cand) == 0:
        return None
    boot = bootstrap_mean_diff(cand, prod, n_resamples=5000, seed=0)
    return PairedDiff(
        name=name,
        n=len(cand),
        production=float(np.mean(prod)),
        candidate=float(np.mean(cand)),
        difference=boot.delta,
        ci_low=boot.ci_low,
        ci_high=boot.ci_high,
        **extra,
    )


def _request_text(req: Any) -> str:
    if not isinstance(req, dict):
        return ""
    if isinstance(req.get("messages"), list) and req["messages"]:
        last = req["messages"][-1]
        content = last.get("content") if isinstance(last, dict) else last
        return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    prompt = req.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)


def _clip(text: str | None, n: int = 240) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def build_report(
    sessions: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    *,
    judge: PairwiseJudge | None = None,
    top: int = 5,
) -> ShadowReport:
    """The report over ``rows`` (from :func:`tunecheck.shadow.log.load_requests`)."""
    counts = Counter(r["mirror"] for r in rows)
    counts_d = {
        "requests": len(rows),
        **{
            k: counts.get(k, 0)
            for k in ("done", "pending", "dropped", "not_sampled", "unparsable", "off")
        },
    }
    pairs = [
        r
        for r in rows
        if r["mirror"] == "done" and (r["prod_status"] is not None or r["prod_error"] is not None)
    ]
    content = any(r.get("prod_text") is not None for r in pairs)
    rep = ShadowReport(sessions=list(sessions), counts=counts_d, pairs=len(pairs), content=content)
    if counts_d["pending"]:
        rep.notes.append(
            f"{counts_d['pending']} mirror(s) never finished (proxy stopped or killed first)"
        )
    if counts_d["dropped"]:
        rep.notes.append(
            f"{counts_d['dropped']} mirror(s) dropped because the queue was full: the candidate "
            "was slower than the traffic (raise --mirror-concurrency or lower --mirror-fraction)"
        )
    split_rows = [r for r in rows if r["mirror"] == "off"]
    if split_rows:
        rep.variants = _variants(split_rows)
    if not pairs:
        if not split_rows:
            rep.notes.append("no complete pairs yet")
        return rep
    err_p = np.array([_failed(r, "prod") for r in pairs], dtype=float)
    err_c = np.array([_failed(r, "cand") for r in pairs], dtype=float)
    b = int(((err_c == 1) & (err_p == 0)).sum())
    c = int(((err_c == 0) & (err_p == 1)).sum())
    rep.errors = _diff("error rate", err_c, err_p, p_value=mcnemar_exact(b, c))
    ok = [r for r in pairs if not _failed(r, "prod") and not _failed(r, "cand")]
    if ok:
        lat_p = np.array([r["prod_latency_ms"] for r in ok], dtype=float)
        lat_c = np.array([r["cand_latency_ms"] for r in ok], dtype=float)
        rep.latency_ms = _diff("latency (ms)", lat_c, lat_p)
        rep.latency_median_ms = {
            "production": float(np.median(lat_p)),
            "candidate": float(np.median(lat_c)),
            "ratio": float(np.median(lat_c) / np.median(lat_p))
            if np.median(lat_p) > 0
            else math.nan,
        }
        tok = [
            r
            for r in ok
            if r["prod_completion_tokens"] is not None and r["cand_completion_tokens"] is not None
        ]
        if len(tok) == len(ok):
            rep.length = _diff(
                "completion tokens",
                np.array([r["cand_completion_tokens"] for r in tok], dtype=float),
                np.array([r["prod_completion_tokens"] for r in tok], dtype=float),
            )
        else:
            rep.length = _diff(
                "answer characters",
                np.array([r["cand_chars"] or 0 for r in ok], dtype=float),
                np.array([r["prod_chars"] or 0 for r in ok], dtype=float),
                note="token counts missing on some answers: characters instead",
            )
        rep.identical = float(np.mean([r["prod_sha256"] == r["cand_sha256"] for r in ok]))
        if content:
            _content_measures(rep, ok, judge, top)
        else:
            rep.notes.append(
                "logged with --no-content: hashes and lengths only (no text measures, judge "
                "or examples)"
            )
            _hash_disagreements(rep, pairs, top)
    return rep


def _content_measures(
    rep: ShadowReport, ok: list[dict[str, Any]], judge: PairwiseJudge | None, top: int
) -> None:
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    prods = [r["prod_text"] or "" for r in ok]
    cands = [r["cand_text"] or "" for r in ok]
    sims = np.array(
        [
            1.0 if p == c else chrf.sentence_score(c, [p]).score / 100.0
            for p, c in zip(prods, cands, strict=True)
        ]
    )
    rep.similarity_chrf = float(sims.mean())
    for m in REFERENCE_FREE.values():
        d = _diff(
            m.name,
            np.array([m.fn(t) for t in cands], dtype=float),
            np.array([m.fn(t) for t in prods], dtype=float),
            note={True: "higher is better", False: "lower is better", None: "for information"}[
                m.higher_is_better
            ]
            + f": {m.description}",
        )
        if d is not None:
            rep.reference_free.append(d)
    if judge is not None:
        rep.judge = _judge(judge, ok)
    order = np.argsort(sims, kind="stable")[:top]
    rep.disagreements = [
        Disagreement(
            request_id=ok[i]["id"],
            request=_clip(_request_text(ok[i]["request"])),
            production=_clip(prods[i]),
            candidate=_clip(cands[i]),
            similarity=float(sims[i]),
            why="least similar answers (chrF)",
        )
        for i in order
        if sims[i] < 1.0
    ]


def _hash_disagreements(rep: ShadowReport, pairs: list[dict[str, Any]], top: int) -> None:
    def gap(r: dict[str, Any]) -> float:
        if _failed(r, "prod") != _failed(r, "cand"):
            return math.inf
        return abs((r["cand_chars"] or 0) - (r["prod_chars"] or 0))

    ranked = sorted(
        (r for r in pairs if r["prod_sha256"] != r["cand_sha256"]), key=gap, reverse=True
    )
    rep.disagreements = [
        Disagreement(
            r["id"],
            f"sha256 {r['request_sha256'][:12]}",
            f"{r['prod_chars']} chars",
            f"{r['cand_chars']} chars",
            None,
            "one side failed" if gap(r) == math.inf else "largest length difference",
        )
        for r in ranked[:top]
    ]


def _judge(judge: PairwiseJudge, ok: list[dict[str, Any]]) -> dict[str, Any]:
    from scipy.stats import binomtest

    scores = []
    failures = 0
    for r in ok:
        s = judge(r["request"] or {}, r["prod_text"] or "", r["cand_text"] or "")
        if s is None:
            failures += 1
        else:
            scores.append(float(s))
    out: dict[str, Any] = {"n": len(scores), "judge_errors": failures}
    if scores:
        arr = np.array(scores)
        boot = bootstrap_mean_diff(arr, np.zeros_like(arr), n_resamples=5000, seed=0)
        wins, losses = int((arr > 0.5).sum()), int((arr < 0.5).sum())
        out.update(
            win_rate=float(arr.mean()),
            ci_low=boot.ci_low,
            ci_high=boot.ci_high,
            wins=wins,
            losses=losses,
            ties=len(arr) - wins - losses,
            sign_test_p=float(binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0,
        )
    return out


def _variants(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for variant in ("production", "candidate"):
        side = "cand" if variant == "candidate" else "prod"
        vr = [r for r in rows if r["variant"] == variant]
        done = [r for r in vr if r[f"{side}_status"] is not None or r[f"{side}_error"]]
        lat = [r[f"{side}_latency_ms"] for r in done if not _failed(r, side)]
        out[variant] = {
            "requests": len(vr),
            "units": len({r["unit_id"] for r in vr if r["unit_id"]}),
            "unassigned": sum(r["unit_id"] is None for r in vr),
            "error_rate": float(np.mean([_failed(r, side) for r in done])) if done else None,
            "latency_median_ms": float(np.median(lat)) if lat else None,
        }
    return out
