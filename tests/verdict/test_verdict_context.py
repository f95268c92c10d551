"""Verdict qualifiers (issue 13): blind check, weak baseline, no probes, must_not_regress, probe pairing."""

from __future__ import annotations

import pytest
from verdict_helpers import make_task

from tunecheck.blind_check import mark_blind_check, record_blind_check
from tunecheck.errors import SpecError, TunecheckError
from tunecheck.evaluate import final_verdict
from tunecheck.results import BlindCheck, RunResult
from tunecheck.spec import Spec, TaskSpec, Thresholds, parse_spec
from tunecheck.store import open_store
from tunecheck.verdict import exit_code
from tunecheck.verdict_context import (
    CAPABILITIES_NOT_CHECKED,
    UNPROMPTED,
    VerdictContext,
    context_for,
    must_not_regress,
    requires_blind_check,
)

TH = Thresholds()


def _pending(task, run_id="r1"):
    ctx = VerdictContext(run_id=run_id, blind_check=BlindCheck(required=True, n=60))
    return final_verdict([task], [], TH, ctx)


def test_blind_check_pending_is_not_yet_deploy(deploy_task):
    v = _pending(deploy_task)
    assert v.decision == "DEPLOY" and v.pending_review and v.label == "DEPLOY-pending-review"
    assert v.summary == (
        "metrics say deploy; blind check of 60 examples not done yet: `tunecheck review r1`"
    )
    assert exit_code(v, "iterate") == 1 and exit_code(v, "abandon") == 0
    assert v.model_dump()["label"] == "DEPLOY-pending-review"
    assert not any(s.startswith("deploy the candidate") for s in v.next_steps)
    # a non-DEPLOY only records the state
    weak = final_verdict(
        [make_task(base_right=100, cand_right=104)], [], TH,
        VerdictContext(blind_check=BlindCheck(required=True)),
    )  # fmt: skip
    assert weak.decision == "ITERATE" and not weak.pending_review


def test_completed_blind_check_satisfies_or_overturns(deploy_task):
    result = RunResult(run_id="r1", tasks=[deploy_task], verdict=_pending(deploy_task))
    passed = mark_blind_check(result, examples=60, passed=True, method="two reviewers")
    v = passed.verdict
    assert v.decision == "DEPLOY" and not v.pending_review and v.label == "DEPLOY"
    assert exit_code(v, "iterate") == 0
    assert any(
        "blind check by two reviewers: 60 examples, the candidate was preferred" in r
        for r in v.reasons
    )
    assert not any("tunecheck review" in s for s in v.next_steps)
    assert any(s.startswith("deploy the candidate") for s in v.next_steps)
    failed = mark_blind_check(result, examples=40, passed=False, method="judge:gpt")
    assert failed.verdict.decision == "ITERATE" and failed.verdict.blind_check.passed is False
    assert "fewer examples than the 60 asked" in failed.verdict.blind_check.note
    assert exit_code(failed.verdict, "iterate") == 1
    with pytest.raises(TunecheckError, match="at least one example"):
        mark_blind_check(result, examples=0, passed=True)


def test_record_blind_check_updates_the_stored_run(deploy_task, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    run_id = store.create_run(name="t", spec_hash="x")
    result = RunResult(run_id=run_id, tasks=[deploy_task], verdict=_pending(deploy_task, run_id))
    store.finish_run(
        run_id,
        status="completed",
        verdict=result.verdict.label,
        result=result.model_dump(mode="json"),
    )
    assert store.list_runs()[0]["verdict"] == "DEPLOY-pending-review"
    record_blind_check(url, run_id, examples=60, passed=True, method="review")
    run = open_store(url).get_run(run_id)
    assert run["verdict"] == "DEPLOY" and run["status"] == "completed"
    stored = RunResult.model_validate(run["result"])
    assert stored.verdict.blind_check.done and not stored.verdict.pending_review


def test_blind_check_defaults_by_task_kind():
    gen = TaskSpec(data="d.jsonl", metrics=["chrf"])
    cls = TaskSpec(data="d.jsonl", metrics=["accuracy", "macro_f1"])
    ext = TaskSpec(data="d.jsonl", metrics=["json_exact_match", "field_accuracy"])
    assert requires_blind_check(gen) and not requires_blind_check(cls)
    assert not requires_blind_check(ext)
    assert not requires_blind_check(gen.model_copy(update={"require_blind_check": False}))
    assert requires_blind_check(cls.model_copy(update={"require_blind_check": True}))


SPEC = """
contenders:
  - {{name: base, model: "scripted:zero"}}
  - name: finetuned
    model: "{cand}"
task: {{name: task, data: d.jsonl, metrics: [{metric}]}}
{extra}
"""


def _spec(cand="scripted:tuned", metric="exact_match", extra="") -> Spec:
    return parse_spec(SPEC.format(cand=cand, metric=metric, extra=extra))


def test_weak_baseline_and_no_probes_are_stated(deploy_task):
    ctx = context_for(_spec(), [deploy_task], run_id="r", probes_run=False,
                      no_probes_reason="`probes: []` in the spec")  # fmt: skip
    assert ctx.unprompted_baseline and ctx.causal_lm and ctx.blind_check is None
    v = final_verdict([deploy_task], [], TH, ctx)
    assert v.decision == "DEPLOY" and v.qualifiers == [CAPABILITIES_NOT_CHECKED, UNPROMPTED]
    assert "no capability probes were run" in v.summary and "breaks nothing" not in v.summary
    assert "no capability probes were run (`probes: []` in the spec)" in v.reasons
    assert any("unprompted base model" in r and "best production prompt" in r for r in v.reasons)
    # a classifier cannot be probed: stated, but DEPLOY is not marked for it
    clf = context_for(_spec("hf-classifier:clf"), [deploy_task], run_id="r", probes_run=False)
    assert CAPABILITIES_NOT_CHECKED not in final_verdict([deploy_task], [], TH, clf).qualifiers
    # a prompted baseline removes the warning
    prompted = parse_spec(
        SPEC.format(cand="scripted:tuned", metric="exact_match", extra="").replace(
            'model: "scripted:zero"}', 'model: "scripted:zero", prompt: {system: Be brief.}}'
        )
    )
    ctx2 = context_for(prompted, [deploy_task], run_id="r", probes_run=True)
    assert not ctx2.unprompted_baseline
    assert UNPROMPTED not in final_verdict([deploy_task], [], TH, ctx2).qualifiers
    # generation metric: the blind check is required by default
    assert context_for(_spec(metric="chrf"), [deploy_task], run_id="r", probes_run=True).blind_check


def _sliced_task():
    # 300 examples in 3 slices; the candidate gains everywhere except on 'vip' where it loses 25
    def slices(i):
        return ["vip" if i % 3 == 0 else "faq" if i % 3 == 1 else "misc"]

    from tunecheck.examples import Example
    from tunecheck.pipeline.scoring import evaluate_task
    from tunecheck.spec import ParserSpec

    n = 300
    examples = [
        Example(id=f"t{i}", input=f"q{i}", reference="yes", slices=tuple(slices(i)))
        for i in range(n)
    ]
    base = ["yes" if i % 2 == 0 or i % 3 == 0 else "no" for i in range(n)]
    cand = []
    lost = 0
    for i in range(n):
        if i % 3 == 0 and base[i] == "yes" and lost < 25:
            cand.append("no")
            lost += 1
        elif i % 3 != 0:
            cand.append("yes")
        else:
            cand.append(base[i])
    return evaluate_task(
        "task", examples, {"base+prompt": base, "finetuned": cand}, metrics=["exact_match"],
        primary_metric="exact_match", parser=ParserSpec(), candidate="finetuned",
        baselines=["base+prompt"], n_resamples=1000,
    )  # fmt: skip


def test_must_not_regress_blocks_with_holm_across_listed_slices():
    from statsmodels.stats.multitest import multipletests

    task = _sliced_task()
    assert task.comparison().delta > 0.1 and task.comparison().significant
    guarded = must_not_regress(task, ["vip", "faq"])
    assert [c.slice for c in guarded] == ["faq", "vip"]
    ref = multipletests([c.p_value for c in guarded], method="holm")[1]
    assert [c.p_adjusted for c in guarded] == pytest.approx(list(ref))
    vip = next(c for c in guarded if c.slice == "vip")
    assert vip.delta < 0 and vip.p_adjusted < 0.05
    ctx = VerdictContext(must_not_regress={"task": guarded})
    v = final_verdict([task], [], TH, ctx)
    assert v.decision == "ITERATE" and "'vip'" in v.summary
    assert any("slice 'vip'" in r and "blocked" in r for r in v.reasons)
    assert any("slice 'faq'" in r and "no significant drop" in r for r in v.reasons)
    assert not any(s.startswith("deploy the candidate") for s in v.next_steps)
    # listing only 'faq' deploys
    ok = final_verdict(
        [task], [], TH, VerdictContext(must_not_regress={"task": must_not_regress(task, ["faq"])})
    )
    assert ok.decision == "DEPLOY"
    with pytest.raises(SpecError, match=r"'vipp'.*slices in the data: \['faq', 'misc', 'vip'\]"):
        must_not_regress(task, ["vipp"])


def test_must_not_regress_follows_the_metric_direction():
    """A fall of a lower-is-better metric on a listed slice is a gain: it must not block."""
    task = _sliced_task()
    guarded = must_not_regress(task, ["vip", "faq"])
    flipped = [c.model_copy(update={"higher_is_better": False}) for c in guarded]
    vip = next(c for c in flipped if c.slice == "vip")
    assert vip.delta < 0 and vip.p_adjusted < 0.05 and vip.improvement()[0] > 0
    v = final_verdict([task], [], TH, VerdictContext(must_not_regress={"task": flipped}))
    assert not any("slice 'vip'" in r and "blocked" in r for r in v.reasons)
    assert any("slice 'vip'" in r and "no significant drop" in r for r in v.reasons)


def test_a_run_reads_must_not_regress_and_states_its_context_end_to_end():
    """``assemble_result`` (the run's last step) with must_not_regress, a weak baseline, no probes."""
    from tunecheck.evaluate import assemble_result
    from tunecheck.models.base import Generation
    from tunecheck.pipeline.state import ContenderOutputs, LoadedTask, RunState

    task = _sliced_task()
    spec = parse_spec(
        """
contenders:
  - {name: base+prompt, model: "hf:/models/base"}
  - {name: finetuned, model: "hf:/models/base+adapter=/runs/a"}
task: {name: task, data: d.jsonl, metrics: [exact_match], must_not_regress: [vip]}
probes: []
bootstrap: 1000
"""
    )
    from tunecheck.examples import Example

    examples = [
        Example(id=e.id, input=f"q{i}", reference="yes", slices=tuple(e.slices))
        for i, e in enumerate(task.examples)
    ]
    state = RunState(run_id="r9", tasks=[LoadedTask(spec=spec.tasks[0], examples=examples)])
    for name in ("base+prompt", "finetuned"):
        gens = [Generation([e.outputs[name]]) for e in task.examples]
        state.outputs[(name, "task")] = ContenderOutputs(name, "task", gens)
    result = assemble_result(
        spec, state, [], probes_run=False, no_probes_reason="`probes: []` in the spec"
    )
    (t,) = result.tasks
    assert [c.slice for c in t.must_not_regress] == ["vip"]
    assert t.must_not_regress[0].p_adjusted == t.must_not_regress[0].p_value  # a family of one
    v = result.verdict
    assert v.decision == "ITERATE" and "'vip'" in v.summary
    assert "no capability probes were run (`probes: []` in the spec)" in v.reasons
    assert any("weak baseline" in r for r in v.reasons)
    assert not v.qualifiers  # marks belong to a DEPLOY only
