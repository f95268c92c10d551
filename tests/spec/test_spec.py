"""The eval spec: valid specs load; bad ones name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunecheck.errors import SpecError
from tunecheck.examples import Example
from tunecheck.spec import load_spec, parse_spec

GOOD = """\
seed: 7
contenders:
  - name: base
    model: hf:models/base
    prompt:
      system: You are terse.
      few_shot:
        - {input: "2+2?", output: "4"}
  - name: finetuned
    model: hf:models/base+adapter=adapters/lora
task:
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  fields: {input: text, reference: target, label: category}
  metrics: [field_accuracy, json_exact_match]
probes:
  - {name: arc, path: probes/arc.jsonl, n: 50}
thresholds: {warn: 0.05, fail: 0.2}
"""


def test_good_spec_loads_and_resolves_paths(tmp_path: Path) -> None:
    path = tmp_path / "tunecheck.yaml"
    path.write_text(GOOD)
    spec = load_spec(path)
    assert spec.candidate == "finetuned"
    assert [b.name for b in spec.baselines] == ["base"]
    task = spec.tasks[0]
    assert task.primary_metric == "field_accuracy"
    assert task.data == str(tmp_path / "splits/test.jsonl")
    assert task.lock == str(tmp_path / "splits/tunecheck.lock.json")
    assert spec.probes is not None and spec.probes[0].path == str(tmp_path / "probes/arc.jsonl")
    assert spec.thresholds.fail == 0.2 and spec.thresholds.alpha == 0.05
    # model paths that do not exist stay as written (they may be hub ids)
    assert spec.contenders[0].model == "hf:models/base"


def test_default_probes_are_builtin() -> None:
    spec = parse_spec(GOOD.replace("probes:\n  - {name: arc, path: probes/arc.jsonl, n: 50}\n", ""))
    assert [p.builtin for p in spec.probe_specs()] == ["arithmetic", "reasoning", "instructions"]


def test_fingerprint_changes_with_content() -> None:
    a = parse_spec(GOOD)
    b = parse_spec(GOOD.replace("seed: 7", "seed: 8"))
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == parse_spec(GOOD).fingerprint()


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (("    prompt:\n", "    promt:\n"), [":5:", "contenders.0.promt", "did you mean 'prompt'"]),
        (("  metrics: [", "  metrix: ["), [":15:", "metrix", "did you mean 'metrics'"]),
        (("seed: 7", "seed: seven"), [":1:", "field `seed`", "integer"]),
        (
            ("thresholds: {warn: 0.05, fail: 0.2}", "thresholds: {warn: 0.3, fail: 0.2}"),
            [":18:", "thresholds", "must be >= warn"],
        ),
        (("  - name: finetuned\n", "  - name: base\n"), ["unique", "base"]),
    ],
)
def test_errors_name_line_and_field(
    tmp_path: Path, mutation: tuple[str, str], expected: list[str]
) -> None:
    path = tmp_path / "tunecheck.yaml"
    assert mutation[0] in GOOD
    path.write_text(GOOD.replace(*mutation))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_candidate_typo_is_suggested() -> None:
    with pytest.raises(SpecError, match="did you mean 'finetuned'"):
        parse_spec(GOOD + "candidate: fintuned\n")


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("contenders:\n  - name: [unclosed\n")
    with pytest.raises(SpecError, match=r"s\.yaml:\d+: not valid YAML"):
        load_spec(path)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_prompt_rendering_with_few_shot() -> None:
    spec = parse_spec(GOOD)
    prompt = spec.contenders[0].prompt.build()
    messages = prompt.render(Example(id="e", input="3+3?"))
    assert messages == (
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "3+3?"},
    )
    assert spec.contenders[1].prompt.build().fingerprint() != prompt.fingerprint()


def test_template_undefined_variable_is_clear() -> None:
    from tunecheck.prompts import Prompt

    with pytest.raises(SpecError, match="undefined variable"):
        Prompt(template="{{ nope }}").render(Example(id="e", input="x"))
