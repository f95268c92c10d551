"""A run result as flat tracker parameters and metrics (names both MLflow and W&B accept)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: MLflow's limit on a parameter value (longer values are cut; the full block is an artifact)
MAX_PARAM_LENGTH = 6000
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


def key(*parts: str) -> str:
    """A tracker-safe name: ``/``-joined parts, characters MLflow refuses replaced by ``_``."""
    return "/".join(_BAD_KEY.sub("_", str(p)) for p in parts if p != "")


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
        return
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    out[key(prefix)] = text[:MAX_PARAM_LENGTH]


def params(result: Any) -> dict[str, str]:
    """Run identity, every contender's identity and the candidate's training configuration."""
    out: dict[str, str] = {}
    _flat("tunecheck", {
        "run_id": result.run_id, "spec": result.spec_name, "spec_hash": result.spec_hash,
        "lock_hash": result.lock_hash, "candidate": result.candidate,
        "tool_version": result.tool_version,
    }, out)  # fmt: skip
    for c in result.contenders:
        block = c.model_dump(mode="json", exclude={"training", "name"})
        _flat(f"contender.{c.name}", block, out)
    for d in result.data:
        _flat(f"data.{d.task}", d.model_dump(mode="json", exclude={"task"}), out)
    training = result.training
    if training is not None:
        t = training.model_dump(mode="json", exclude={"files"})
        state = t.pop("trainer_state", None) or {}
        # the log history is a time series, not a parameter: keep the summary fields
        t["trainer_state"] = {k: v for k, v in state.items() if k != "log_history"} or None
        _flat("training", {k: v for k, v in t.items() if v is not None}, out)
    return out


def _put(out: dict[str, float], name: str, value: float | None) -> None:
    if value is not None and math.isfinite(float(value)):
        out[name] = float(value)


def metrics(result: Any) -> dict[str, float]:
    """Each contender's metrics, the candidate's deltas (intervals, p-values), probe changes."""
    out: dict[str, float] = {}
    for task in result.tasks:
        for c in task.contenders:
            for m, v in c.metrics.items():
                _put(out, key(task.name, c.name, m), v)
        for comp in task.comparisons:
            base = key(task.name, "delta", comp.baseline, comp.metric)
            _put(out, base, comp.delta)
            # suffixes, not sub-names: MLflow's file store keeps a metric as a file, so no
            # name may also be a folder of other names
            _put(out, base + "_ci_low", comp.ci_low)
            _put(out, base + "_ci_high", comp.ci_high)
            _put(out, base + "_p_value", comp.p_value)
            _put(out, base + "_p_adjusted", comp.p_adjusted)
        if task.flips is not None:
            _put(out, key(task.name, "flips", "broken"), len(task.flips.broken))
            _put(out, key(task.name, "flips", "fixed"), len(task.flips.fixed))
    for p in result.probes:
        base = key("probe", p.name)
        for name in ("base", "finetuned", "abs_change", "rel_change", "ci_low", "ci_high",
                     "p_value", "p_adjusted"):  # fmt: skip
            _put(out, f"{base}/{name}", getattr(p, name))
    return out


def tags(result: Any) -> dict[str, str]:
    """The verdict and the run's identity as tags."""
    verdict = result.verdict.decision if result.verdict else "NONE"
    out = {
        "tunecheck.verdict": verdict,
        "tunecheck.run_id": result.run_id,
        "tunecheck.candidate": str(result.candidate),
    }
    if result.verdict is not None:
        out["tunecheck.summary"] = result.verdict.summary[:5000]
    if result.lock_hash:
        out["tunecheck.lock_hash"] = result.lock_hash
    return out
