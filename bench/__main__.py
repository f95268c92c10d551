"""Run all benchmarks (or those named on the command line: ``python -m bench stats``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench import MissingData


def main() -> int:
    wanted = sys.argv[1:]
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if wanted:
        names = [n for n in names if any(w in n for w in wanted)]
    failures = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            ok = module.main()
        except MissingData as err:  # no full data set here: say so, do not count it as a failure
            print(f"--- {name}: SKIPPED, data missing: {err}")
            continue
        except Exception as err:  # a broken benchmark must not hide the others
            print(f"FAILED: {type(err).__name__}: {err}")
            ok = False
        print(
            f"--- {name}: {'ok' if ok is not False else 'TARGET MISSED'} ({time.perf_counter() - start:.1f} s)"
        )
        failures += ok is False
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
