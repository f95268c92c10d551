"""Text metrics from a spec: options in the metrics list, validation errors (exit 2), and a
whole `tunecheck run` of a summarisation task on a deterministic backend."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tunecheck.errors import SpecError, TunecheckError
from tunecheck.models.base import Generation, GenerationRequest, Model, Progress, backend
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec, parse_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "text"

SPEC = """\
seed: 1
bootstrap: 1000
store: sqlite:///runs.db
contenders:
  - name: base
    model: {base}
  - name: finetuned
    model: {cand}
task:
  name: tldr
  data: tldr.jsonl
  metrics: {metrics}
probes: []
"""


def _write(
    tmp: Path, metrics: str, base: str = "lengthtest:lead", cand: str = "lengthtest:padded"
) -> Path:
    path = tmp / "tunecheck.yaml"
    path.write_text(SPEC.format(metrics=metrics, base=base, cand=cand))
    return path


def test_metric_mappings_become_names_and_options(tmp_path):
    (tmp_path / "enc").mkdir()
    spec = load_spec(_write(tmp_path, "[rouge_l, {name: bertscore, model: enc, idf: true}, ter]"))
    task = spec.tasks[0]
    assert task.metrics == ["rouge_l", "bertscore", "ter"] and task.primary_metric == "rouge_l"
    # a relative encoder folder is relative to the spec file, like the data path
    assert task.metric_options == {"bertscore": {"model": str(tmp_path / "enc"), "idf": True}}
    same = parse_spec(
        SPEC.format(metrics="[rouge_l]", base="a:b", cand="a:c").replace(
            "  metrics: [rouge_l]",
            "  metrics: [rouge_l]\n  metric_options: {rouge_l: {use_stemmer: true}}",
        )
    )
    assert same.tasks[0].metric_options == {"rouge_l": {"use_stemmer": True}}


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (
            "[{name: bertscore, model: no_such_dir}]",
            r"tasks\.0\.metrics\.bertscore\.model.*no_such_dir.*does not exist",
        ),
        (
            "[{name: rouge_l, stemmer: true}]",
            r"rouge_l\.stemmer: unknown option; allowed: use_stemmer, measure",
        ),
        ("[{name: ter, normalized: maybe}]", r"ter\.normalized"),
        ("[{name: exact_match, model: x}]", r"exact_match.*takes no options"),
        ("[{model: x}]", r"needs `name:`"),
    ],
)
def test_bad_metric_options_are_spec_errors(tmp_path, metrics, message):
    with pytest.raises(SpecError, match=message):
        load_spec(_write(tmp_path, metrics))


def test_cli_exits_2_naming_the_field(tmp_path):
    spec = _write(tmp_path, "[rouge_l, {name: bertscore, model: ./encoders/missing}]")
    proc = subprocess.run(
        [sys.executable, "-m", "tunecheck", "run", str(spec)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "tasks.0.metrics.bertscore.model" in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "runs.db").exists()  # nothing was started


# --------------------------------------------------------------------------- a whole run


@backend("lengthtest")
class LengthTestModel(Model):
    """``lead``: the first sentence of the input; ``padded``: that plus 0-11 words of the
    reference (TUNECHECK_LENGTH_REFS maps input -> references). Reports token counts."""

    generated = 0  # requests answered, across instances

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.refs: dict[str, list[str]] = json.loads(
            Path(os.environ["TUNECHECK_LENGTH_REFS"]).read_text()
        )

    @classmethod
    def from_ref(cls, target: str, **options: object) -> LengthTestModel:
        return cls(target)

    @classmethod
    def fingerprint_for(cls, target: str, **options: object) -> str:
        return hashlib.sha256(f"lengthtest:{target}".encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        return self.fingerprint_for(self.mode)

    def _answer(self, prompt: str) -> str:
        first = prompt.split("\n")[0]
        if self.mode == "lead":
            return first
        have = set(first.lower().split())
        missing = [w for w in self.refs[prompt][0].split() if w.lower() not in have]
        k = int(hashlib.sha256(prompt.encode()).hexdigest()[:4], 16) % 12
        return " ".join([first, *missing[:k]])

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        out = []
        for r in requests:
            prompt = r.prompt if isinstance(r.prompt, str) else r.prompt[-1]["content"]
            text = self._answer(prompt)
            out.append(Generation([text], completion_tokens=len(text.split()) + 2))
            LengthTestModel.generated += 1
            if progress:
                progress(1)
        return out

    def loglikelihood(self, requests, progress=None):  # pragma: no cover - not used by tasks
        raise NotImplementedError


@pytest.fixture()
def tldr_project(tmp_path, monkeypatch):
    rows = [json.loads(x) for x in (DATA / "scitldr_300.jsonl").read_text().splitlines()[:150]]
    data = [{"id": r["id"], "input": r["lead2"], "reference": r["summaries"]} for r in rows]
    (tmp_path / "tldr.jsonl").write_text("".join(json.dumps(d) + "\n" for d in data))
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({d["input"]: d["reference"] for d in data}))
    monkeypatch.setenv("TUNECHECK_LENGTH_REFS", str(refs))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_run_reports_lengths_and_refuses_a_length_only_gain(tldr_project):
    spec = load_spec(
        _write(
            tldr_project,
            "[{name: rouge1, measure: recall}, {name: rouge_l, use_stemmer: true}, bleu, ter]",
        )
    )
    outcome = run(spec, options=RunOptions(show_progress=False, probes=False))
    task = outcome.result.tasks[0]
    assert task.comparison().significant and task.comparison().delta > 0
    assert task.length_adjustment().explained_by_length
    assert outcome.result.verdict.decision == "ITERATE"
    assert "explained by longer outputs" in outcome.result.verdict.summary
    lengths = {s.contender: s for s in task.lengths}
    assert lengths["base"].tokens_from == "model tokenizer"
    assert lengths["finetuned"].mean_tokens == pytest.approx(lengths["finetuned"].mean_words + 2)
    assert task.comparison("ter").higher_is_better is False
    assert task.contender("base").details["rouge_l"]["use_stemmer"] is True
    assert {a.metric for a in task.length_adjusted} == {"rouge1", "rouge_l", "bleu", "ter"}
    # the figures the README quotes for this case
    adj = {a.metric: a for a in task.length_adjusted}
    assert adj["rouge1"].raw_delta == pytest.approx(0.253, abs=5e-4)
    assert adj["rouge1"].adjusted_delta == pytest.approx(0.016, abs=5e-4)
    assert adj["rouge1"].adjusted_p == pytest.approx(0.262, abs=5e-4)
    assert adj["rouge_l"].adjusted_delta == pytest.approx(-0.030, abs=5e-4)
    assert lengths["finetuned"].mean_words == pytest.approx(26.7, abs=0.05)
    assert lengths["base"].mean_words == pytest.approx(21.2, abs=0.05)


def test_missing_reference_fails_before_any_model_call(tldr_project):
    rows = [json.loads(x) for x in (tldr_project / "tldr.jsonl").read_text().splitlines()]
    rows[3]["reference"] = None
    (tldr_project / "tldr.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = load_spec(
        _write(tldr_project, "[rouge_l]", base="lengthtest:lead", cand="lengthtest:lead")
    )
    before = LengthTestModel.generated
    # pre-flight finds it (with every other problem) before any model or store is touched
    with pytest.raises(
        TunecheckError, match=rf"example {rows[3]['id']!r} has no reference.*rouge_l"
    ):
        run(spec, options=RunOptions(show_progress=False, probes=False))
    assert LengthTestModel.generated == before  # not one generation was asked for
    assert not (tldr_project / "runs.db").exists()  # nor any store written


def test_text_metric_with_options_on_a_probe(tldr_project):
    from rouge_score import rouge_scorer

    spec_path = _write(tldr_project, "[rouge1]")
    spec_path.write_text(
        spec_path.read_text().replace(
            "probes: []",
            "probes:\n  - {name: tldr_probe, path: tldr.jsonl, fields: {input: input, reference: "
            "reference}, metric: rouge_l, n: 40, options: {metric_options: {use_stemmer: true}}}",
        )
    )
    outcome = run(load_spec(spec_path), options=RunOptions(show_progress=False))
    (probe,) = outcome.result.probes
    assert probe.metric == "rouge_l" and probe.n == 40
    # the base model answers the first line of each input: recompute with rouge-score on
    # the same seeded sample of 40, with stemming (the option) and without (must differ)
    from tunecheck.data.load import load_examples
    from tunecheck.probes.loaders import sample_examples
    from tunecheck.spec import FieldMap

    examples = sample_examples(load_examples(str(tldr_project / "tldr.jsonl"), FieldMap()), 40, 1)

    def mean_rouge_l(stem: bool) -> float:
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
        return float(np.mean([
            scorer.score_multi(e.reference, e.input.split("\n")[0])["rougeL"].fmeasure
            for e in examples
        ]))  # fmt: skip

    assert probe.base == pytest.approx(mean_rouge_l(True), abs=1e-12)
    assert probe.base != pytest.approx(mean_rouge_l(False), abs=1e-6)
    assert probe.status == "ok"  # padding with reference words does not lower ROUGE-L
