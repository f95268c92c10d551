"""Which contender the capability probes compare the candidate with (issue 13: probe_baseline)."""

from __future__ import annotations

import pytest
import scripted_backend  # noqa: F401 - registers the `scripted` backend

from tunecheck.errors import SpecError
from tunecheck.runner import open_models, plan_probes, strip_adapter
from tunecheck.spec import parse_spec
from tunecheck.store import open_store


def test_probe_pairing(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(tmp_path / "none.json"))
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert strip_adapter("hf:models/base+adapter=runs/lora") == "hf:models/base"
    assert strip_adapter("hf:models/base+adapter=a+dtype=bf16") == "hf:models/base+dtype=bf16"
    assert strip_adapter("hf:models/base") is None
    three = """
contenders:
  - {name: other-ft, model: "scripted:prompted"}
  - {name: base, model: "scripted:zero"}
  - {name: finetuned, model: "scripted:zero+adapter=lora"}
task: {name: task, data: d.jsonl}
"""
    spec = parse_spec(three)
    plan = plan_probes(spec, open_models(spec, store), store)
    # the first baseline is another fine-tune: the probes use the base without adapter instead
    assert plan.base_name == "base" and "its base model without adapter" in plan.pairing
    spec2 = parse_spec(three.replace('  - {name: base, model: "scripted:zero"}\n', ""))
    plan2 = plan_probes(spec2, open_models(spec2, store), store)
    assert plan2.implicit and plan2.base_name == "base (no adapter)"
    assert plan2.base.fingerprint != plan2.candidate.fingerprint
    spec3 = parse_spec(three + "probe_baseline: other-ft\n")
    plan3 = plan_probes(spec3, open_models(spec3, store), store)
    assert plan3.base_name == "other-ft" and "(probe_baseline)" in plan3.pairing
    plain = parse_spec(
        three.replace("+adapter=lora", "").replace('"scripted:zero"}', '"scripted:tuned"}')
    )
    plan4 = plan_probes(plain, open_models(plain, store), store)
    assert plan4.base_name == "other-ft" and "set `probe_baseline`" in plan4.pairing
    assert plan_probes(spec, {}, store, enabled=False).skip_reason == "--no-probes"
    assert "probes: []" in plan_probes(parse_spec(three + "probes: []\n"), {}, store).skip_reason
    with pytest.raises(SpecError, match="probe_baseline 'bse' is not a contender"):
        parse_spec(three + "probe_baseline: bse\n")
    with pytest.raises(SpecError, match="another contender than the candidate"):
        parse_spec(three + "probe_baseline: finetuned\n")
