"""k-fold runs (issue 13): 150 rows, 5 folds, a different scripted model per fold, one verdict."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import scripted_backend
from scripted_backend import ScriptedModel

from tunecheck.data import split_dataset
from tunecheck.data.lock import read_lock
from tunecheck.errors import SpecError
from tunecheck.models.base import Generation, GenerationRequest, Progress, backend
from tunecheck.report.html import render_html
from tunecheck.report.markdown import render_markdown
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec
from tunecheck.store import open_store

CATEGORIES = ["billing", "shipping", "technical", "account"]


@backend("foldscripted")
class FoldModel(ScriptedModel):
    """``foldscripted:N``: fold N's fine-tune (scripted 'tuned' accuracy); logs what it answered."""

    def __init__(self, fold: str) -> None:
        super().__init__("tuned")
        self.fold = fold

    @classmethod
    def from_ref(cls, target: str, **options: object) -> FoldModel:
        return cls(target)

    @classmethod
    def fingerprint_for(cls, target: str, **options: object) -> str:
        return hashlib.sha256(f"foldscripted:{target}".encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        return self.fingerprint_for(self.fold)

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        with open(os.environ["FOLD_LOG"], "a") as f:
            for r in requests:
                prompt = r.prompt if isinstance(r.prompt, str) else r.prompt[-1]["content"]
                f.write(json.dumps([self.fold, prompt]) + "\n")
        return super().generate(requests, progress)


SPEC = """\
seed: 3
bootstrap: 1000
contenders:
  - name: base
    model: scripted:zero
  - name: base+prompt
    model: scripted:prompted
    prompt:
      system: Answer with JSON.
  - name: finetuned
    model: foldscripted:{fold}
task:
  name: tickets
  data: data.jsonl
  lock: folds/tunecheck.lock.json
  metrics: [json_exact_match]
probes:
  - {name: arithmetic, builtin: arithmetic, n: 20}
probe_baseline: base
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [
        {
            "id": f"t{i:03d}",
            "input": f"ticket {i} about {CATEGORIES[i % 4]}",
            "reference": json.dumps({"category": CATEGORIES[i % 4]}),
        }
        for i in range(150)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(tmp_path / "data.jsonl", tmp_path / "folds", folds=5, seed=2)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(answers))
    monkeypatch.setenv("FOLD_LOG", str(tmp_path / "folds.log"))
    (tmp_path / "tunecheck.yaml").write_text(SPEC)
    return tmp_path


def test_five_folds_pool_into_one_verdict(project: Path) -> None:
    assert scripted_backend.ACCURACY["tuned"] == 0.9
    spec = load_spec(project / "tunecheck.yaml")
    store = f"sqlite:///{project / 'store.db'}"
    outcome = run(spec, options=RunOptions(store_url=store, show_progress=False))
    result = outcome.result
    task = result.tasks[0]
    # every example tested once, pooled
    assert task.n_examples == 150 and len({e.id for e in task.examples}) == 150
    assert [f.fold for f in task.folds] == [1, 2, 3, 4, 5]
    assert [f.n for f in task.folds] == [30] * 5
    # each fold model answered exactly its own fold's test inputs (plus 4 guard prompts from
    # them and its 1/5 share of the probe, which is not in the answer file)
    index = read_lock(project / "folds" / "tunecheck.lock.json")
    rows = {
        json.loads(line)["id"]: json.loads(line)["input"]
        for line in (project / "data.jsonl").read_text().splitlines()
    }
    seen: dict[str, set[str]] = {}
    for line in (project / "folds.log").read_text().splitlines():
        fold, prompt = json.loads(line)
        seen.setdefault(fold, set()).add(prompt)
    for k, rel in enumerate(index.folds, start=1):
        lock = read_lock(index.folder / rel)
        test_ids = lock.splits["test"].ids
        fold_inputs = {p for p in seen[str(k)] if p.startswith("ticket ")}
        assert len(fold_inputs) == 30
        assert fold_inputs == {rows[i] for i in test_ids}
        probe_prompts = seen[str(k)] - fold_inputs
        assert len(probe_prompts) == 4  # 20 probe items / 5 folds
    # the pooled numbers are the per-example outcomes of all folds together
    pooled_ft = task.contender("finetuned").metrics["json_exact_match"]
    per_fold = [f.values["finetuned"] for f in task.folds]
    assert pooled_ft == pytest.approx(sum(v * 30 for v in per_fold) / 150)
    comp = task.comparison()
    assert comp.n == 150 and comp.baseline == "base+prompt"
    assert result.verdict.decision == "DEPLOY"
    assert any("5 folds pooled" in r for r in result.verdict.reasons)
    # probes: every item once per side, fold model i on share i; nobody answers them here
    (probe,) = result.probes
    assert probe.n == 20 and probe.status == "uninformative" and probe.gate == "uninformative"
    assert any(
        "compare 'finetuned' with 'base' (probe_baseline)" in r for r in result.verdict.reasons
    )
    # the report shows per-fold and pooled numbers; the HTML report draws the floor probe
    md = render_markdown(result)
    assert "| fold | n | candidate | baseline | Δ (pts) | 95% CI | p |" in md
    for f in task.folds:
        assert f"| {f.fold} | 30 | {f.values['finetuned']:.3f} |" in md
    html = render_html(open_store(store), result.run_id)
    assert "arithmetic (accuracy)" in html
    # the stored run carries the same pooled verdict, and a re-run makes no model call
    again = run(spec, options=RunOptions(store_url=store, show_progress=False))
    assert again.model_calls == 0 and again.result.verdict == result.verdict


def test_kfold_takes_one_task(project: Path) -> None:
    text = (project / "tunecheck.yaml").read_text()
    text = text.replace("task:\n  name: tickets", "tasks:\n - name: tickets").replace(
        "\n  data:", "\n   data:"
    )
    text = text.replace("\n  lock:", "\n   lock:").replace("\n  metrics:", "\n   metrics:")
    text = text.replace("probes:", " - name: other\n   data: data.jsonl\nprobes:")
    (project / "tunecheck.yaml").write_text(text)
    spec = load_spec(project / "tunecheck.yaml")
    with pytest.raises(SpecError, match="exactly one task"):
        run(
            spec, options=RunOptions(store_url=f"sqlite:///{project / 's.db'}", show_progress=False)
        )


def test_fold_placeholder_needs_a_kfold_lock(project: Path) -> None:
    with pytest.warns(UserWarning, match="k-fold"):
        split_dataset(project / "data.jsonl", project / "plain", seed=2)
    text = (project / "tunecheck.yaml").read_text().replace("folds/tunecheck", "plain/tunecheck")
    (project / "tunecheck.yaml").write_text(text)
    spec = load_spec(project / "tunecheck.yaml")
    with pytest.raises(SpecError, match=r"\['finetuned'\] use \{fold\}.*not a k-fold index"):
        run(
            spec, options=RunOptions(store_url=f"sqlite:///{project / 's.db'}", show_progress=False)
        )
