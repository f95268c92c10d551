"""The spec the demo writes: every contender is prompted exactly as the demo means."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tunecheck.data import read_rows, split_dataset
from tunecheck.demo.finetune import FINETUNE_SYSTEM_PROMPT
from tunecheck.demo.pipeline import SIZES, SPLIT_SEED, TASK_SEED, write_spec
from tunecheck.demo.task import (
    SYSTEM_PROMPT,
    few_shot_examples,
    generate_support_tickets,
    write_jsonl,
)
from tunecheck.prompts import FewShot, Prompt
from tunecheck.spec import load_spec
from tunecheck.spec_yaml import prompt_yaml


def _written_spec(tmp_path: Path, size: str) -> tuple[Path, list[dict]]:
    cfg = SIZES[size]
    rows = generate_support_tickets(cfg.finetune.n_examples, seed=TASK_SEED)
    data = write_jsonl(rows, tmp_path / "data" / "tickets.jsonl")
    split_dataset(data, tmp_path / "splits", stratify="category", seed=SPLIT_SEED)
    train = read_rows(tmp_path / "splits" / "train.jsonl")
    spec_path = write_spec(
        tmp_path,
        model_dir=tmp_path / "model",
        adapter_dir=tmp_path / "finetune" / "adapter",
        train_rows=train,
        size=cfg,
    )
    return spec_path, train


def test_every_contender_gets_the_prompt_the_demo_means(tmp_path: Path) -> None:
    spec_path, train = _written_spec(tmp_path, "quick")
    shots = few_shot_examples(train, SIZES["quick"].finetune.few_shot_k, seed=TASK_SEED)
    assert len(shots) == 4
    expected = {
        "base": Prompt(system=FINETUNE_SYSTEM_PROMPT),
        "base+prompt": Prompt(
            system=SYSTEM_PROMPT, few_shot=tuple(FewShot(s.input, s.output) for s in shots)
        ),
        "finetuned": Prompt(system=FINETUNE_SYSTEM_PROMPT),
    }
    spec = load_spec(spec_path)
    got = {c.name: c.prompt.build() for c in spec.contenders}
    assert got.keys() == expected.keys()
    for name, prompt in expected.items():
        assert got[name].system == prompt.system, name
        assert got[name].few_shot == prompt.few_shot, name
        assert got[name] == prompt, name
    # the production prompt really is the long one, with its apostrophe and blank lines
    assert got["base+prompt"].system.startswith("You are a support-ticket triage system.")
    assert "customer's message" in got["base+prompt"].system


def test_written_spec_is_readable(tmp_path: Path) -> None:
    text, _ = _written_spec(tmp_path, "quick")
    lines = text.read_text(encoding="utf-8").splitlines()
    blocks = 0
    for i, line in enumerate(lines):
        if re.search(r":\s*\|[-+]?\d*\s*$", line):
            blocks += 1
            first = lines[i + 1].strip()
            # a quoted scalar inside a block literal is loaded as text, quotes included
            assert first[:1] not in {"'", '"'}, f"line {i + 2}: {lines[i + 1]!r}"
    assert blocks >= 1  # the production prompt is a block literal
    joined = "\n".join(lines)
    # every line of the production prompt appears verbatim (indented), not re-escaped
    for prompt_line in SYSTEM_PROMPT.splitlines():
        if prompt_line:
            assert f"        {prompt_line}" in joined
    assert "''" not in joined


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(
    system=_TEXT,
    shots=st.lists(st.fixed_dictionaries({"input": _TEXT, "output": _TEXT}), max_size=3),
)
def test_prompt_yaml_round_trips_any_text(system: str, shots: list[dict[str, str]]) -> None:
    prompt = {"system": system, "few_shot": shots}
    text = "prompt:\n" + prompt_yaml(prompt, 2) + "\n"
    assert yaml.safe_load(text) == {"prompt": prompt}
