"""Benchmarks: ``make bench`` runs every ``bench_*.py`` module's ``main()``.

Each benchmark measures tunecheck and its reference side by side in one run and
prints the ratio, so numbers are comparable on any machine.

Some benchmarks read the full public data sets (bigger than the test subsets in
``tests/data/fixtures``) from ``../shared/data`` beside the repository, or from the
folder named by ``TUNECHECK_BENCH_DATA``. When that folder or a file in it is missing, the
benchmark stops with :class:`MissingData`, and ``python -m bench`` reports it as skipped,
naming the file it looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "TUNECHECK_BENCH_DATA"


class MissingData(RuntimeError):
    """A full data set a benchmark needs is not on this machine."""


def data_root() -> Path:
    """Where the full data sets are: ``$TUNECHECK_BENCH_DATA`` or ``../shared/data``."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get(DATA_ENV) or default)


def data_file(*parts: str) -> Path:
    """A file (or folder) of the full data sets; :class:`MissingData` if it is not there."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        raise MissingData(
            f"{path} not found: this benchmark needs the full public data set "
            f"(see tests/data/SOURCES.md for origins); put it there or set {DATA_ENV}"
        )
    return path
