"""Benchmark loaders on the real files in tests/data/fixtures/probes, plus synthetic HellaSwag/HF layouts."""

from __future__ import annotations

import csv
import json

import pytest

from tunecheck.errors import TunecheckError
from tunecheck.metrics.ifeval import checkers
from tunecheck.probes import build_probe, load_benchmark, read_benchmark, sample_examples
from tunecheck.spec import FieldMap, ProbeSpec


def _lines(path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def test_mmlu_folder_with_header_and_int_answers(fixture_data):
    folder = fixture_data / "probes" / "mmlu"
    fmt, examples = read_benchmark(folder)
    assert fmt.name == "mmlu" and fmt.scoring == "multiple_choice"
    # independent reference: csv.DictReader over every *_test.csv
    expected = []
    for f in sorted(folder.glob("*_test.csv")):
        with f.open(encoding="utf-8", newline="") as fh:
            expected += [
                (r["question"].strip(), int(r["answer"]), f.stem[: -len("_test")])
                for r in csv.DictReader(fh)
            ]
    assert len(examples) == len(expected) == 300  # 6 subjects x 50
    for ex, (question, answer, subject) in zip(examples, expected, strict=True):
        assert ex.meta["question"] == question
        assert ex.meta["gold"] == answer
        assert ex.slices == (subject,)
        assert ex.meta["continuations"] == [" A", " B", " C", " D"]
        assert ex.meta["context"].endswith("\nAnswer:")
        assert ex.meta["context"].startswith(
            f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}."
        )
    assert len({ex.id for ex in examples}) == len(examples)


def test_mmlu_hendrycks_csv_without_header_and_letter_answers(fixture_data, tmp_path):
    src = fixture_data / "probes" / "mmlu" / "astronomy_test.csv"
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:10]
    out = tmp_path / "astronomy_test.csv"
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        for r in rows:
            w.writerow(
                [
                    r["question"],
                    r["choice0"],
                    r["choice1"],
                    r["choice2"],
                    r["choice3"],
                    "ABCD"[int(r["answer"])],
                ]
            )
    _, headerless = read_benchmark(out)
    _, original = read_benchmark(src)
    assert [e.meta["gold"] for e in headerless] == [int(r["answer"]) for r in rows]
    assert [e.meta["context"] for e in headerless] == [e.meta["context"] for e in original[:10]]


def test_arc_llm_foundry_format(fixture_data):
    path = fixture_data / "probes" / "arc_easy_test.jsonl"
    fmt, examples = read_benchmark(path)
    assert fmt.name == "mc_jsonl"
    assert len(examples) == _lines(path) == 300
    first = json.loads(path.open().readline())
    ex = examples[0]
    assert ex.meta["choices"] == first["choices"] and ex.meta["gold"] == first["gold"]
    assert ex.meta["context"] == first["query"] + "\nAnswer:"
    assert ex.meta["continuations"] == [" " + c for c in first["choices"]]
    assert ex.reference == "ABCD"[first["gold"]]


def test_boolq_llm_foundry_format(fixture_data):
    path = fixture_data / "probes" / "boolq_val.jsonl"
    _, examples = read_benchmark(path)
    assert len(examples) == _lines(path) == 150
    golds = [json.loads(line)["gold"] for line in path.open()]
    assert [e.meta["gold"] for e in examples] == golds
    assert all(e.meta["choices"] == ["no", "yes"] for e in examples)


def test_arc_hf_format_with_labels_and_numeric_keys(tmp_path, fixture_data):
    rows = [
        {
            "id": "Q1",
            "question": "Which is a mammal?",
            "choices": {"text": ["shark", "whale", "trout"], "label": ["A", "B", "C"]},
            "answerKey": "B",
        },
        {
            "id": "Q2",
            "question": "2+2?",
            "choices": {"text": ["3", "4", "5", "6"], "label": ["1", "2", "3", "4"]},
            "answerKey": "2",
        },
    ]
    path = tmp_path / "ARC-Easy-test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    fmt, examples = read_benchmark(path)
    assert fmt.name == "arc"
    assert [e.id for e in examples] == ["Q1", "Q2"]
    assert [e.meta["gold"] for e in examples] == [1, 1]
    assert examples[0].meta["context"] == "Question: Which is a mammal?\nAnswer:"


def test_hellaswag_synthetic_fixture(tmp_path):
    rows = [
        {
            "ind": 4,
            "activity_label": "Removing ice from car",
            "ctx_a": "Then, the man writes over the snow covering the window of a car.",
            "ctx_b": "a woman wearing winter clothes smiles.",
            "ctx": "unused",
            "endings": [
                ", the man adds wax to the windshield.",
                ", a person is holding a snow shovel.",
                ", the man continues removing the snow on his car.",
                ", the man holds a [title] snow brush.",
            ],
            "label": "2",
        },
        {
            "ind": 9,
            "ctx": "A boy kicks a ball",
            "endings": ["into the goal.", "into the sky.", "at the wall.", "away."],
            "label": 0,
        },
    ]
    path = tmp_path / "hellaswag_val.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    fmt, examples = read_benchmark(path)
    assert fmt.name == "hellaswag" and fmt.metric == "acc_norm"
    a, b = examples
    assert a.id == "hellaswag-4" and a.meta["gold"] == 2
    assert a.meta["context"] == (
        "Removing ice from car: Then, the man writes over the snow covering the window of a car. "
        "A woman wearing winter clothes smiles."
    )
    assert a.meta["choices"][3] == ", the man holds a. snow brush."
    assert b.meta["context"] == "A boy kicks a ball" and b.meta["gold"] == 0


def test_gsm8k(fixture_data):
    path = fixture_data / "probes" / "gsm8k_test.jsonl"
    fmt, examples = read_benchmark(path)
    assert fmt.name == "gsm8k" and fmt.scoring == "number"
    assert len(examples) == _lines(path) == 200
    raw = [json.loads(line) for line in path.open()]
    for ex, row in zip(examples, raw, strict=True):
        final = row["answer"].split("####")[-1].strip().replace(",", "")
        assert ex.reference == float(final)
    assert examples[0].reference == 18


def test_ifeval(fixture_data):
    path = fixture_data / "probes" / "ifeval_input_data.jsonl"
    fmt, examples = read_benchmark(path)
    assert fmt.name == "ifeval" and len(examples) == 541
    raw = [json.loads(line) for line in path.open()]
    assert [e.id for e in examples] == [f"ifeval-{r['key']}" for r in raw]
    for ex, row in zip(examples, raw, strict=True):
        assert ex.input == row["prompt"]
        assert ex.meta["instruction_id_list"] == row["instruction_id_list"]
        assert all(i in checkers for i in row["instruction_id_list"])


def test_sampling_is_deterministic_and_seeded(fixture_data):
    path = fixture_data / "probes" / "arc_easy_test.jsonl"
    _, a = load_benchmark(path, n=25, seed=3)
    _, b = load_benchmark(path, n=25, seed=3)
    _, c = load_benchmark(path, n=25, seed=4)
    assert [e.id for e in a] == [e.id for e in b]
    assert [e.id for e in a] != [e.id for e in c]
    assert len({e.id for e in a}) == 25
    # file order is kept
    order = {e.id: i for i, e in enumerate(read_benchmark(path)[1])}
    assert [order[e.id] for e in a] == sorted(order[e.id] for e in a)
    assert sample_examples(a, 100, 0) == a


def test_format_errors_name_the_file(tmp_path):
    weird = tmp_path / "stuff.jsonl"
    weird.write_text(json.dumps({"foo": 1, "bar": 2}) + "\n")
    with pytest.raises(
        TunecheckError, match=r"stuff\.jsonl.*cannot tell the benchmark format"
    ) as err:
        read_benchmark(weird)
    assert "IFEval" in str(err.value) and "GSM8K" in str(err.value)
    bad = tmp_path / "gsm8k_bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(TunecheckError, match=r"gsm8k_bad\.jsonl:1: GSM8K answer has no"):
        read_benchmark(bad)
    broken = tmp_path / "arc.jsonl"
    broken.write_text('{"query": "q", "choices": ["a"], "gold": 0}\n{not json\n')
    with pytest.raises(TunecheckError, match=r"arc\.jsonl:2: invalid JSON"):
        read_benchmark(broken)
    with pytest.raises(TunecheckError, match="benchmark file not found"):
        read_benchmark(tmp_path / "missing.jsonl")
    with pytest.raises(TunecheckError, match="unknown benchmark format 'gsm9k'"):
        read_benchmark(broken, format="gsm9k")
    ifeval_bad = tmp_path / "ifeval.jsonl"
    ifeval_bad.write_text(
        json.dumps({"key": 1, "prompt": "p", "instruction_id_list": ["x:y"], "kwargs": [{}]}) + "\n"
    )
    with pytest.raises(TunecheckError, match="unknown IFEval instruction 'x:y'"):
        read_benchmark(ifeval_bad)


def test_hub_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(TunecheckError, match="local path"):
        read_benchmark("hf:tunecheck-nonexistent/never-there@test")


def test_build_probe_from_benchmark_and_user_task(fixture_data, tmp_path):
    probe = build_probe(
        ProbeSpec(name="arc", path=str(fixture_data / "probes" / "arc_easy_test.jsonl"), n=12),
        seed=1,
    )
    assert probe.scoring == "multiple_choice" and probe.metric == "acc" and len(probe) == 12
    probe = build_probe(
        ProbeSpec(name="gsm", path=str(fixture_data / "probes" / "gsm8k_test.jsonl"), n=5), seed=1
    )
    assert probe.scoring == "number"
    with pytest.raises(TunecheckError, match="metric 'rouge' does not apply"):
        build_probe(
            ProbeSpec(
                name="arc",
                path=str(fixture_data / "probes" / "arc_easy_test.jsonl"),
                metric="rouge",
            ),
            seed=1,
        )
    task = tmp_path / "capitals.jsonl"
    task.write_text(
        "\n".join(
            json.dumps({"id": f"c{i}", "question": q, "answer": a})
            for i, (q, a) in enumerate(
                [("Capital of France?", "Paris"), ("Capital of Italy?", "Rome")]
            )
        )
    )
    probe = build_probe(
        ProbeSpec(
            name="capitals",
            path=str(task),
            fields=FieldMap(input="question", reference="answer"),
            metric="exact_match",
        ),
        seed=1,
    )
    assert probe.scoring == "metric" and [e.reference for e in probe.examples] == ["Paris", "Rome"]
    with pytest.raises(TunecheckError, match="unknown metric"):
        build_probe(
            ProbeSpec(
                name="c",
                path=str(task),
                fields=FieldMap(input="question", reference="answer"),
                metric="exact_mach",
            ),
            seed=1,
        )
