"""RunResult ↔ JSON, with a versioned schema (``schema_version``; see "Reports and the result schema" in README.md)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tunecheck.errors import TunecheckError
from tunecheck.results import SCHEMA_VERSION, RunResult


def render_json(result: RunResult, *, indent: int | None = 2) -> str:
    """The whole result as JSON: every number, comparison and per-example outcome."""
    return result.model_dump_json(indent=indent)


def load_json(text: str, *, source: str = "<json>") -> RunResult:
    """Read a JSON report back; refuses reports written by a newer schema version."""
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TunecheckError(
            f"not valid JSON ({err.msg}, line {err.lineno})", where=source
        ) from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise TunecheckError(
            f"unsupported report schema_version {version!r} (this tunecheck reads up to {SCHEMA_VERSION})",
            where=source,
            hint="upgrade tunecheck to read reports from newer versions",
        )
    try:
        return RunResult.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise TunecheckError(
            f"invalid report: field `{field}`: {first['msg']}", where=source
        ) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of reports (``RunResult.model_json_schema()``), tagged with its version."""
    schema = RunResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"tunecheck RunResult v{SCHEMA_VERSION}"
    return schema
