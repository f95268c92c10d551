"""Re-running a completed run takes <= 5% of the first run's time (issue: cache and resume).

Both runs use the real embedded model through the same spec and store, in one process:
the first generates everything (and loads the weights); the second is answered from the
store (and, thanks to lazy loading, never loads the weights).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

TARGET = 0.05


def main() -> bool:
    from tunecheck.data import split_dataset
    from tunecheck.demo.task import generate_support_tickets, write_jsonl
    from tunecheck.models.gguf import embedded_model_dir
    from tunecheck.runner import RunOptions, run
    from tunecheck.spec import load_spec

    n_test = 16 if os.environ.get("TUNECHECK_BENCH_QUICK") else 48
    model = embedded_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_jsonl(generate_support_tickets(n_test * 10, seed=3), root / "tickets.jsonl")
        split_dataset(root / "tickets.jsonl", root / "splits", stratify="category", seed=13)
        spec_path = root / "tunecheck.yaml"
        spec_path.write_text(
            f"""
contenders:
  - name: base
    model: hf:{model}
    generation: {{max_new_tokens: 40}}
  - name: base+prompt
    model: hf:{model}
    prompt: {{system: {json.dumps("Answer with one JSON object: category, priority, product.")}}}
    generation: {{max_new_tokens: 40}}
task:
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  parser: {{type: json}}
  metrics: [field_accuracy, json_exact_match]
probes: []
"""
        )
        spec = load_spec(spec_path)
        opts = RunOptions(store_url=f"sqlite:///{root / 'store.db'}", show_progress=False)
        t0 = time.perf_counter()
        first = run(spec, options=opts)
        t1 = time.perf_counter()
        second = run(spec, options=opts)
        t2 = time.perf_counter()
    ratio = (t2 - t1) / (t1 - t0)
    print(
        f"first run  {t1 - t0:7.2f} s  ({first.model_calls} model calls, {n_test} test examples x 2 contenders)"
    )
    print(f"re-run     {t2 - t1:7.2f} s  ({second.model_calls} model calls)")
    print(f"ratio      {ratio:7.3f}  (target <= {TARGET})")
    return second.model_calls == 0 and ratio <= TARGET


if __name__ == "__main__":
    main()
