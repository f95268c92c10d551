"""An end-to-end run with the embedded SmolLM2 as a local ``hf:`` judge.

Its judging quality is irrelevant (135M parameters); what is tested is the plumbing:
the judge's chat prompts reach a real local model, its answers are parsed strictly
(an answer that is not the JSON asked for is retried once, then a judge error, never a
win or loss), everything is counted, and a re-run answers every judgement from the cache
without loading the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from judge_server import JudgeServer

from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec

pytestmark = pytest.mark.model


def test_smollm2_as_local_hf_judge(tmp_path: Path, embedded_model_dir: Path) -> None:
    rows = [
        {"id": f"q{i}", "input": f"Name a colour number {i}.", "reference": "GOOD red"}
        for i in range(6)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with JudgeServer() as server:
        (tmp_path / "tunecheck.yaml").write_text(f"""\
seed: 1
bootstrap: 200
guard_examples: 1
probes: []
contenders:
  - name: base
    model: {server.ref("base")}
  - name: tuned
    model: {server.ref("tuned")}
task:
  name: colours
  data: data.jsonl
  metrics: [chrf]
  judge:
    model: hf:{embedded_model_dir}
    options: {{batch_size: 8}}
    max_new_tokens: 40
    max_error_rate: 1.0
    rubric:
      criteria:
        - name: helpful
          description: the answer names a colour
    pairwise: {{}}
""")
        spec = load_spec(tmp_path / "tunecheck.yaml")
        opts = RunOptions(store_url=f"sqlite:///{tmp_path / 's.db'}", show_progress=False, limit=3)
        first = run(spec, options=opts).result.tasks[0]
        j = first.judge
        assert j is not None and j.fingerprint
        # 3 examples: 2 contenders x 3 rubric + 2 orders x 3 pairwise, plus one repair per miss
        assert j.cost.calls == 12 + j.cost.repairs and j.cost.cached == 0
        assert j.cost.tokens_in > 0 and j.cost.tokens_out > 0
        pw = j.pairwise_vs("base")
        assert pw.n + pw.errors == 3 and pw.wins + pw.losses + pw.ties == pw.n
        errors = {(e.mode, e.id, e.contender) for e in j.errors}
        rubric_errors = sum(j.rubric.errors.values())
        assert rubric_errors + sum(j.rubric.judged.values()) == 6
        assert rubric_errors == len([e for e in errors if e[0] == "rubric"])
        # every recorded error says why and keeps the answer it could not read
        assert all(e.reason and e.answer is not None for e in j.errors)
        for ex in first.examples:  # a judge error is no score, never a 0 or a 1
            bad = (ex.id, "tuned") in {(e.id, e.contender) for e in j.errors if e.mode == "rubric"}
            assert (ex.scores["tuned"]["judge_score"] is None) == bad

        print(
            f"SmolLM2 judge: {j.cost.calls} calls ({j.cost.repairs} repairs), "
            f"rubric judged {sum(j.rubric.judged.values())}/6, pairwise n={pw.n} "
            f"errors={pw.errors}, tokens {j.cost.tokens_in}/{j.cost.tokens_out}"
        )
        second = run(spec, options=opts).result.tasks[0].judge
        assert second.cost.calls == 0 and second.cost.cached == j.cost.calls
        assert second.pairwise == j.pairwise and second.rubric == j.rubric
