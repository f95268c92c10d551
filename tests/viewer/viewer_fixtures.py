"""A real stored run for the viewer, review and report tests, made with a scripted backend.

200 ticket examples in two slices; the scripted fine-tune answers ~85% right, the prompted
base ~50%, on independent examples, so the run has flips both ways. One example's input and reference carry HTML
(``<img onerror>`` and ``<script>``) so every page can be checked to render them as text.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import viewer_backend  # noqa: F401 - registers the `flipper` backend

CATEGORIES = ["billing", "shipping", "technical", "account"]
XSS_INPUT = 'ticket {i} <img src=x onerror="window.__xss=1"> about billing'
XSS_REFERENCE = '{"category": "<script>window.__xss=2</script>", "priority": "high"}'

SPEC = """\
seed: 3
bootstrap: 500
contenders:
  - name: base
    model: flipper:zero
  - name: base+prompt
    model: flipper:prompted
    prompt:
      system: Answer with JSON.
  - name: finetuned
    model: flipper:{candidate}
task:
  name: tickets
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  fields: {{slices: kind}}
  parser: {{type: json}}
  metrics: [json_exact_match, field_accuracy]
  require_blind_check: {blind}
probes: []
"""


@dataclass
class ScriptedRun:
    store_url: str
    run_id: str
    root: Path
    result: object


def make_run(
    root: Path, n: int = 200, candidate: str = "tuned", blind_check: bool = False
) -> ScriptedRun:
    import os

    from tunecheck.data import split_dataset
    from tunecheck.runner import RunOptions, run
    from tunecheck.spec import load_spec

    rows = []
    for i in range(2 * n):
        ref = json.dumps({"category": CATEGORIES[i % 4], "priority": ["low", "high"][i % 2]})
        rows.append(
            {
                "id": f"t{i:04d}",
                "input": f"ticket number {i} about {CATEGORIES[i % 4]}",
                "reference": ref,
                "kind": "urgent" if i % 3 == 0 else "routine",
            }
        )
    for i in range(7, 2 * n, 37):  # about 1 in 37 carries HTML; half of them land in test
        rows[i]["input"], rows[i]["reference"] = XSS_INPUT.format(i=i), XSS_REFERENCE
    data = root / "tickets.jsonl"
    if not (root / "splits").exists():
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        split_dataset(data, root / "splits", ratios=(0.45, 0.05, 0.5), seed=5)
    answers = root / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    os.environ["TUNECHECK_SCRIPT"] = str(answers)
    (root / "tunecheck.yaml").write_text(
        SPEC.format(candidate=candidate, blind=str(blind_check).lower())
    )
    store_url = f"sqlite:///{root / 'store.db'}"
    outcome = run(
        load_spec(root / "tunecheck.yaml"),
        options=RunOptions(store_url=store_url, show_progress=False, probes=False),
    )
    return ScriptedRun(store_url, outcome.run_id, root, outcome.result)
