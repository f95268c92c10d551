"""Data: loading (JSONL, CSV/TSV, Parquet, `datasets` folders), splits, the lock, contamination.

Heavy libraries (pyarrow, datasets, numpy) are imported only when a function needs them.
"""

from __future__ import annotations

from tunecheck.data.contamination import Overlap, find_contamination, normalized_text
from tunecheck.data.formats import (
    Table,
    canonical_row,
    content_sha256,
    detect_format,
    file_sha256,
    read_rows,
    read_table,
    write_rows,
)
from tunecheck.data.load import load_examples
from tunecheck.data.lock import (
    LOCK_NAME,
    Lock,
    SplitInfo,
    VerifyReport,
    load_locked_split,
    read_lock,
    verify_lock,
)
from tunecheck.data.split import SplitWarning, split_dataset

__all__ = [
    "LOCK_NAME",
    "Lock",
    "Overlap",
    "SplitInfo",
    "SplitWarning",
    "Table",
    "VerifyReport",
    "canonical_row",
    "content_sha256",
    "detect_format",
    "file_sha256",
    "find_contamination",
    "load_examples",
    "load_locked_split",
    "normalized_text",
    "read_lock",
    "read_rows",
    "read_table",
    "split_dataset",
    "verify_lock",
    "write_rows",
]
