"""``tunecheck shadow export``: logged production traffic as tomorrow's held-out data.

Writes ``shadow.jsonl``: one row per distinct request that production answered
(``id``, ``input`` = the chat messages or the prompt, ``reference`` = production's
answer, ``candidate`` = the candidate's answer when it was mirrored, ``endpoint``,
``model``, ``created_at``). Repeated requests are kept once (the first), so copies
cannot land on both sides of a split. ``tunecheck split`` accepts the file as is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tunecheck.errors import TunecheckError


@dataclass
class ExportResult:
    path: Path
    rows: int
    skipped_errors: int
    skipped_repeats: int
    skipped_no_content: int


def export_pairs(rows: list[dict[str, Any]], out_dir: str | Path) -> ExportResult:
    """Write ``shadow.jsonl`` into ``out_dir`` from logged requests."""
    out_dir = Path(out_dir)
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    errors = repeats = no_content = 0
    for r in rows:
        failed = r["prod_status"] is None or r["prod_status"] >= 400 or r["prod_error"]
        if r["variant"] != "production":
            continue  # split traffic served by the candidate: not production's answer
        if failed:
            errors += 1
            continue
        req = r.get("request")
        if req is None or r.get("prod_text") is None:
            no_content += 1
            continue
        if r["request_sha256"] in seen:
            repeats += 1
            continue
        seen.add(r["request_sha256"])
        input_ = req.get("messages") if "messages" in req else req.get("prompt")
        created = r["created_at"]
        kept.append(
            {
                "id": r["id"],
                "input": input_,
                "reference": r["prod_text"],
                "candidate": r.get("cand_text") if r["mirror"] == "done" else None,
                "endpoint": r["endpoint"],
                "model": r.get("model"),
                "created_at": created.isoformat(timespec="seconds")
                if isinstance(created, datetime)
                else created,
            }
        )
    if not kept:
        why = (
            "the session was logged with --no-content"
            if no_content
            else "no request was answered by production"
        )
        raise TunecheckError(
            f"nothing to export: {why}",
            hint="run the proxy without --no-content to collect a data set",
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "shadow.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for row in kept:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OSError as err:
        raise TunecheckError(f"cannot write the export: {err}", where=str(out_dir)) from None
    return ExportResult(path, len(kept), errors, repeats, no_content)
