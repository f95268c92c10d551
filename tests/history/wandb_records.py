"""Read a W&B offline run file (``run-<id>.wandb``) back into W&B's own protobuf records.

wandb 0.31 writes the file from its Go core and ships no Python reader, so this follows
the documented layout: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB
blocks of LevelDB-log chunks (crc32c:4, length:2, type:1 — full/first/middle/last). Each
reassembled record is parsed with ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    assert struct.unpack("<H", data[4:6])[0] == 0xBEE1
    pos, out, parts = HEADER, [], []
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            parts = [chunk]
        elif kind == FIRST:
            parts = [chunk]
            continue
        elif kind == MIDDLE:
            parts.append(chunk)
            continue
        else:
            parts.append(chunk)
        record = pb.Record()
        record.ParseFromString(b"".join(parts))
        out.append(record)
        parts = []
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def logged(path: str | Path) -> dict[str, Any]:
    """config, history rows, summary, tags and artifact names found in a run file."""
    import json

    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    tags: list[str] = []
    artifacts: list[dict[str, Any]] = []
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            tags.extend(r.run.tags)
            for item in r.run.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in r.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in r.history.item})
        elif kind == "summary":
            for item in r.summary.update:
                summary[_key(item)] = json.loads(item.value_json)
        elif kind == "artifact":
            artifacts.append(
                {
                    "name": r.artifact.name,
                    "type": r.artifact.type,
                    "files": [m.path for m in r.artifact.manifest.contents],
                }
            )
    return {"config": config, "history": history, "summary": summary, "tags": tags,
            "artifacts": artifacts}  # fmt: skip
