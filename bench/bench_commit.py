"""What committing every HTTP answer the moment it arrives costs (issue 19, point 3).

The cache commits each answer of an HTTP backend before the next is awaited, so a
killed run loses only the requests in flight; before, it committed blocks of 64. Side
by side against the instant local server of ``bench_openai`` (2000 requests at
concurrency 64, a fresh SQLite store per round): the per-answer cache, the old
block-of-64 cache, and the backend with no cache at all.

Target: per-answer commits keep at least half the throughput of blocks of 64 (a real
server answers far slower than this one, so the share of commit time is far smaller).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_openai import CONCURRENCY, N_REQUESTS

ROUNDS = 2
TARGET_RATIO = 0.5


class _Blocks:
    """The backend as the cache saw it before: no per-answer reports, blocks of 64."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.fingerprint = inner.fingerprint
        self.backend_name = inner.backend_name
        self.supports_loglikelihood = False
        self.cache_chunk_size = 64

    def generate(self, requests, progress=None):
        return self.inner.generate(requests, progress)


def _requests(tag: str):
    from tunecheck.models import GenerationParams, GenerationRequest

    params = GenerationParams(max_new_tokens=8)
    return [
        GenerationRequest(prompt=({"role": "user", "content": f"{tag} {i}"},), params=params)
        for i in range(N_REQUESTS)
    ]


def _rate(url: str, mode: str, folder: Path, round_: int) -> float:
    from tunecheck.models import load_model
    from tunecheck.models.cache import CachedModel
    from tunecheck.store import open_store

    model = load_model(f"openai:bench@{url}", concurrency=CONCURRENCY)
    _ = model.fingerprint  # the /models lookup is not part of the measurement
    reqs = _requests(f"{mode}-{round_}")
    if mode == "no cache":
        runner = model
    else:
        store = open_store(f"sqlite:///{folder / f'{mode}-{round_}.db'}".replace(" ", "_"))
        runner = CachedModel(model if mode == "per answer" else _Blocks(model), store)
    start = time.perf_counter()
    out = runner.generate(reqs)
    elapsed = time.perf_counter() - start
    assert len(out) == N_REQUESTS and all(g.ok for g in out)
    if mode != "no cache":
        assert store.count_generations(model.fingerprint) == N_REQUESTS
    return N_REQUESTS / elapsed


def main() -> bool:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_openai", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    modes = ("per answer", "blocks of 64", "no cache")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().strip()}/v1"
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(ROUNDS + 1):  # round 0 warms up imports and connections
                for mode in modes:  # interleaved so machine load hits all alike
                    rate = _rate(url, mode, Path(tmp), r)
                    if r:
                        rates[mode].append(rate)
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)
    best = {m: max(v) for m, v in rates.items()}
    print(f"{N_REQUESTS} chat requests at concurrency {CONCURRENCY}, best of {ROUNDS}:")
    for m in modes:
        print(f"  {m:13s}: {best[m]:6.0f} req/s  ({best[m] / best['blocks of 64']:.2f}x blocks)")
    return best["per answer"] / best["blocks of 64"] >= TARGET_RATIO


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
