"""Guards run before scoring: refuse comparisons that cannot mean anything.

* :func:`check_distinguishable` — a LoRA adapter that was silently not applied (or never
  trained) makes the "fine-tuned" model score exactly like the base. We compare greedy
  outputs on a few examples and, when they agree, the log-probabilities of the base's
  outputs under both models (an adapter can shift logits without changing greedy text).
* :func:`check_distinct_contenders` — a baseline that is the candidate itself (same weights,
  same prompt) would make every comparison a tie.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from tunecheck.errors import GuardError
from tunecheck.models.base import GenerationRequest, LoglikelihoodRequest, Model

#: total log-probability difference (nats) above which two models count as different
LOGPROB_TOLERANCE = 1e-4
_GUARD_MAX_TOKENS = 32


def _render(model: Model, prompt: object) -> str | None:
    """The text a model sees for ``prompt`` (chat template applied), if the backend can tell."""
    if isinstance(prompt, str):
        return prompt
    render = getattr(model, "render_prompt", None)
    return render(prompt) if render else None


def check_distinguishable(
    base: Model,
    candidate: Model,
    requests: list[GenerationRequest],
    *,
    logits_check: bool = True,
    limit: int | None = None,
) -> None:
    """Raise :class:`GuardError` when ``candidate`` behaves exactly like ``base``.

    Uses the first ``limit`` requests (all by default), decoded greedily (at most 32 new tokens). Any
    differing output passes the check; identical outputs are then compared by the
    log-probability each model gives the base's outputs (when both backends support it).
    Examples where either model errored are skipped; with none left, there is no evidence
    either way and the check passes.
    """
    probe = [
        replace(
            r,
            params=replace(
                r.params,
                temperature=0.0,
                n=1,
                max_new_tokens=min(r.params.max_new_tokens, _GUARD_MAX_TOKENS),
            ),
        )
        for r in (requests if limit is None else requests[:limit])
    ]
    if not probe:
        return
    base_out = base.generate(probe)
    cand_out = candidate.generate(probe)
    pairs = [(r, b, c) for r, b, c in zip(probe, base_out, cand_out, strict=True) if b.ok and c.ok]
    if not pairs:
        return
    if any(b.texts != c.texts for _, b, c in pairs):
        return

    compared = 0
    if logits_check and base.supports_loglikelihood and candidate.supports_loglikelihood:
        base_reqs, cand_reqs = [], []
        for r, b, _ in pairs:
            ctx_b, ctx_c = _render(base, r.prompt), _render(candidate, r.prompt)
            if ctx_b is None or ctx_c is None or not b.text:
                continue
            base_reqs.append(LoglikelihoodRequest(ctx_b, b.text))
            cand_reqs.append(LoglikelihoodRequest(ctx_c, b.text))
        if base_reqs:
            lb = base.loglikelihood(base_reqs)
            lc = candidate.loglikelihood(cand_reqs)
            for x, y in zip(lb, lc, strict=True):
                if x.error or y.error:
                    continue
                compared += 1
                if not math.isclose(x.logprob, y.logprob, rel_tol=0.0, abs_tol=LOGPROB_TOLERANCE):
                    return

    checked = f"{len(pairs)} example(s): identical outputs" + (
        f" and identical log-probabilities on {compared}" if compared else ""
    )
    raise GuardError(
        "the fine-tuned model is indistinguishable from the base model; was the adapter applied?",
        where=f"{getattr(candidate, 'name', candidate.backend_name)} vs {getattr(base, 'name', base.backend_name)} ({checked})",
        hint="check the adapter path in the model reference (hf:BASE+adapter=PATH) and that training "
        "saved non-zero adapter weights; set `guard_examples: 0` in the spec only if identical models are intended",
    )


def check_distinct_contenders(contenders: Sequence[tuple[str, str, str]]) -> None:
    """Refuse two contenders with equal (model fingerprint, prompt fingerprint).

    ``contenders`` holds ``(name, model_fingerprint, prompt_fingerprint)`` tuples.
    """
    seen: dict[tuple[str, str], str] = {}
    for name, model_fp, prompt_fp in contenders:
        other = seen.get((model_fp, prompt_fp))
        if other is not None:
            raise GuardError(
                f"contenders {other!r} and {name!r} are the same model with the same prompt; "
                "the baseline would be the candidate itself",
                where=f"contenders {other!r}, {name!r} (model {model_fp[:12]}, prompt {prompt_fp[:12]})",
                hint="point the fine-tuned contender at the trained weights or adapter, or give the baseline its own prompt",
            )
        seen[(model_fp, prompt_fp)] = name
