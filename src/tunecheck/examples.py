"""The ``Example``: one row of a task or probe, after field mapping."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

ChatMessage = dict[str, str]


@dataclass(frozen=True)
class Example:
    """One evaluation item.

    ``input`` is plain text or a list of chat messages (``{"role", "content"}``).
    ``reference`` is what a correct output looks like (text, number, dict...);
    ``label`` is the class for classification tasks; ``slices`` are category tags
    used for per-slice statistics; ``meta`` carries loader-specific extras
    (multiple-choice ``choices`` and ``gold``, IFEval ``kwargs``...).
    """

    id: str
    input: str | list[ChatMessage]
    reference: Any = None
    label: str | None = None
    slices: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def content_id(row: dict[str, Any]) -> str:
    """A stable id for a row without an id field: a hash of its canonical JSON."""
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
