"""Fixtures for the history tests: a project on the scripted backend (no real model)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))

import scripted_backend  # noqa: F401 - registers the `scripted` backend

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tunecheck.data import split_dataset

CATEGORIES = ["billing", "shipping", "technical", "account"]

SPEC = """\
seed: 3
bootstrap: 1000
guard_examples: 0
store: {store}
contenders:
  - name: base
    model: scripted:zero
  - name: base+prompt
    model: scripted:prompted
    prompt:
      system: Answer with JSON.
  - name: {name}
    model: scripted:{candidate}
    options: {options}
task:
  name: tickets
  data: {folder}/test.jsonl
  lock: {folder}/tunecheck.lock.json
  metrics: [json_exact_match, field_accuracy]
probes: []
{extra}"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """1000 tickets split once (100 test examples), the scripted answers, a store."""
    rows = [
        {
            "id": f"t{i:04d}",
            "input": f"ticket number {i} about {CATEGORIES[i % 4]}",
            "reference": json.dumps(
                {"category": CATEGORIES[i % 4], "priority": ["low", "high"][i % 2]}
            ),
        }
        for i in range(1000)
    ]
    data = tmp_path / "tickets.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(data, tmp_path / "splits", seed=5)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(answers))
    return tmp_path


@pytest.fixture()
def write_spec(project: Path) -> Callable[..., Path]:
    """Write a spec whose candidate is ``scripted:<candidate>``; returns its path."""

    def write(
        candidate: str = "tuned",
        *,
        name: str = "finetuned",
        folder: str = "splits",
        options: dict | None = None,
        extra: str = "",
        file: str = "tunecheck.yaml",
    ) -> Path:
        path = project / file
        path.write_text(
            SPEC.format(
                store=f"sqlite:///{project / 'runs.db'}",
                name=name,
                candidate=candidate,
                folder=folder,
                options=json.dumps(options or {}),
                extra=extra,
            )
        )
        return path

    return write
