"""Extraction, exact-match, numeric and chrF metrics on hand-computed and real cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sacrebleu.metrics import CHRF

from tunecheck.errors import DataError, SpecError
from tunecheck.examples import Example
from tunecheck.metrics import score_outputs
from tunecheck.metrics.parsers import parse_json, parse_number
from tunecheck.spec import ParserSpec

JSON = ParserSpec(type="json")
REF = {"name": "Ada Lovelace", "year": 1843, "field": "mathematics"}


def _ex(refs: list) -> list[Example]:
    return [Example(id=f"x{i}", input="doc", reference=r) for i, r in enumerate(refs)]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"a": 1}', True),
        ('```json\n{"a": 1}\n```', True),
        ('```\n{"a": 1}\n```', True),
        ('  ```JSON\n{"a": 1}```  ', True),
        ('Here is the JSON: {"a": 1}', False),
        ('{"a": 1}\nHope this helps!', False),
        ('{"a": 1,}', False),
        ("{'a': 1}", False),
        ('```json\n{"a": 1}\n``` and more', False),
        ("", False),
    ],
)
def test_parse_json_tolerates_only_a_fence(text, ok):
    assert parse_json(text)[0] is ok


def test_field_accuracy_and_exact_match_hand_computed():
    outputs = [
        json.dumps(REF),  # all 3 fields, exact
        '```json\n{"name": "Ada Lovelace", "year": 1843, "field": "mathematics", "extra": 1}\n```',
        '{"name": "Ada  Lovelace ", "year": "1843"}',  # whitespace ok; "1843" != 1843; field missing
        'Sure! {"name": "Ada Lovelace", "year": 1843, "field": "mathematics"}',  # prose: malformed
        '{"name": "ada lovelace", "year": 1843.0, "field": "mathematics"}',  # case matters; 1843.0 == 1843
        "[1, 2, 3]",  # valid JSON, not an object
    ]
    refs = [REF, REF, REF, REF, json.dumps(REF), REF]  # a JSON-string reference is parsed
    scores = score_outputs(["field_accuracy", "json_exact_match"], outputs, _ex(refs), JSON)
    fa = scores["field_accuracy"]
    assert fa.per_example.tolist() == pytest.approx([1, 1, 1 / 3, 0, 2 / 3, 0])
    assert fa.value == pytest.approx((1 + 1 + 1 / 3 + 0 + 2 / 3 + 0) / 6)
    assert fa.kind == "continuous"
    # per-field: name right in examples 0, 1, 2; year in 0, 1, 4; field in 0, 1, 4
    assert fa.details["per_field"] == pytest.approx({"name": 3 / 6, "year": 3 / 6, "field": 3 / 6})
    assert fa.details["invalid"] == 1 and fa.details["not_an_object"] == 1
    # exact match: the extra key makes example 1 wrong
    assert scores["json_exact_match"].per_example.tolist() == [1, 0, 0, 0, 0, 0]


def test_json_types_are_strict():
    outputs = ['{"ok": 1}', '{"ok": true}', '{"tags": ["a", "b"]}', '{"tags": ["b", "a"]}']
    refs = [{"ok": True}, {"ok": True}, {"tags": ["a", "b"]}, {"tags": ["a", "b"]}]
    em = score_outputs(["json_exact_match"], outputs, _ex(refs), JSON)["json_exact_match"]
    assert em.per_example.tolist() == [0, 1, 1, 0]


def test_json_schema_valid():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["name", "year"],
    }
    outputs = [
        '{"name": "A", "year": 1}',
        '{"name": "A"}',
        "not json",
        '{"name": "A", "year": "1"}',
    ]
    s = score_outputs(["json_schema_valid"], outputs, _ex([REF] * 4), JSON, json_schema=schema)
    assert s["json_schema_valid"].per_example.tolist() == [1, 0, 0, 0]
    assert s["json_schema_valid"].details["schema_invalid"] == 2
    with pytest.raises(SpecError, match="json_schema"):
        score_outputs(["json_schema_valid"], outputs, _ex([REF] * 4), JSON)
    with pytest.raises(SpecError, match="invalid JSON Schema"):
        score_outputs(["json_schema_valid"], outputs, _ex([REF] * 4), JSON, json_schema={"type": 5})


def test_bad_references_are_reported_with_the_example():
    with pytest.raises(DataError, match="x0"):
        score_outputs(["field_accuracy"], ["{}"], _ex(["{not json"]), JSON)
    with pytest.raises(DataError, match="non-empty JSON object"):
        score_outputs(["field_accuracy"], ["{}"], _ex([[1, 2]]), JSON)
    with pytest.raises(DataError, match="no number"):
        score_outputs(["numeric_match"], ["1"], _ex(["none"]), ParserSpec())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$1,234.50", 1234.5),
        ("The answer is 42.", 42.0),
        ("from 3 to 7 apples, so 7 kg", 7.0),
        ("it costs -5 dollars", -5.0),
        ("pages 3-4", 4.0),
        ("12% of 1,000,000", 1_000_000.0),
        ("about .5", 0.5),
        ("1.5e3 m", 1500.0),
        ("no digits", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_numeric_match_on_gsm8k_references(fixture_data):
    rows = [json.loads(line) for line in (fixture_data / "probes" / "gsm8k_test.jsonl").open()][:40]
    examples = [
        Example(id=str(i), input=r["question"], reference=r["answer"]) for i, r in enumerate(rows)
    ]
    finals = [r["answer"].split("####")[-1].strip() for r in rows]
    outputs = [f"So the total is ${int(f.replace(',', '')):,}." for f in finals]
    outputs[0] = "I am not sure."
    outputs[1] = f"The answer is {float(finals[1].replace(',', '')) + 1}"
    s = score_outputs(["numeric_match"], outputs, examples, ParserSpec())["numeric_match"]
    assert s.per_example[2:].tolist() == [1.0] * 38
    assert s.per_example[:2].tolist() == [0.0, 0.0]
    assert s.details["invalid"] == 1


def test_exact_match_normalises_and_compares_by_parser():
    s = score_outputs(
        ["exact_match"],
        ['  "Paris."', "paris france", "PARIS"],
        _ex(["Paris", "Paris", "paris"]),
        ParserSpec(),
    )["exact_match"]
    assert s.per_example.tolist() == [1, 0, 1]
    n = score_outputs(
        ["exact_match"], ["x = 1,000.0", "x"], _ex([1000, 3]), ParserSpec(type="number")
    )
    assert n["exact_match"].per_example.tolist() == [1, 0]
    assert n["exact_match"].details["invalid"] == 1
    r = score_outputs(
        ["exact_match", "numeric_match"],
        ["Final: 12 (check: 13)", "Final: 7"],
        _ex(["12", "8"]),
        ParserSpec(type="regex", pattern=r"Final:\s*(\d+)"),
    )
    assert r["exact_match"].per_example.tolist() == [1, 0]
    assert r["numeric_match"].per_example.tolist() == [1, 0]


def test_chrf_equals_sacrebleu(fixture_data):
    rows = [json.loads(line) for line in (fixture_data / "tasks" / "ntrex128_en_de.jsonl").open()][
        :60
    ]
    refs = [r["target"] for r in rows]
    rng = np.random.default_rng(3)
    hyps = [
        " ".join(w for w in ref.split() if rng.random() < 0.8) for ref in refs
    ]  # drop ~20% words
    examples = [Example(id=str(r["id"]), input=r["source"], reference=r["target"]) for r in rows]
    s = score_outputs(["chrf"], hyps, examples, ParserSpec())["chrf"]
    scorer = CHRF()
    assert s.value == pytest.approx(scorer.corpus_score(hyps, [refs]).score / 100, abs=1e-12)
    sentence = [scorer.sentence_score(h, [r]).score / 100 for h, r in zip(hyps, refs, strict=True)]
    assert s.per_example == pytest.approx(sentence, abs=1e-12)
    sub = s.subset(s.example_ids[:20])  # resample path: recomputed from summed statistics
    assert sub.value == pytest.approx(
        scorer.corpus_score(hyps[:20], [refs[:20]]).score / 100, abs=1e-12
    )
