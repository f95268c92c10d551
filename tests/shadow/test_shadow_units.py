"""Small pieces of the shadow proxy: the migration, answer parsing, scrubbing, assignment."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tunecheck.shadow.config import assign_variant
from tunecheck.shadow.payload import decode_body, parse_answer, scrub


def test_migration_matches_the_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tunecheck.store import open_store
    from tunecheck.store.schema import Base

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if "shadow" in repr(d)]
    assert ours == []
    with store.engine.connect() as conn:
        mode = conn.exec_driver_sql("pragma journal_mode").scalar()
    assert mode == "wal"


def test_parse_json_sse_gzip_and_errors() -> None:
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    raw = gzip.compress(json.dumps(body).encode())
    ans = parse_answer(decode_body(raw, "gzip"), 200, "application/json")
    assert (ans.text, ans.prompt_tokens, ans.completion_tokens, ans.finish_reason, ans.error) == (
        "hi",
        3,
        1,
        "stop",
        None,
    )
    events = [
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 1, "delta": {"content": "other choice"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}},
    ]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()
    ans = parse_answer(sse + b"data: [DONE]\n\n", 200, "text/event-stream; charset=utf-8")
    assert (ans.text, ans.finish_reason, ans.completion_tokens, ans.error) == (
        "Hello",
        "length",
        2,
        None,
    )
    cut = parse_answer(sse, 200, "text/event-stream")
    assert cut.text == "Hello" and cut.error == "stream ended without [DONE]"
    err = parse_answer(b'{"error": {"message": "model overloaded"}}', 503, "application/json")
    assert err.error == "HTTP 503: model overloaded" and err.text is None
    assert parse_answer(b"<html>", 200, "text/html").error.startswith("HTTP 200: the body")


def test_scrub_removes_every_key_form() -> None:
    text = "failed for Authorization: Bearer abc.def-123 key=sk-proj-ABCDEF123456 own=mysecretkey"
    out = scrub(text, ("mysecretkey",))
    assert "abc.def-123" not in out and "sk-proj" not in out and "mysecretkey" not in out
    assert out.count("***") == 3


def test_assignment_is_sticky_uniform_and_salted() -> None:
    units = [f"user-{i}" for i in range(20000)]
    first = [assign_variant(u, 0.1, "exp") for u in units]
    assert first == [assign_variant(u, 0.1, "exp") for u in units]
    share = sum(v == "candidate" for v in first) / len(units)
    assert abs(share - 0.1) < 4 * (0.1 * 0.9 / len(units)) ** 0.5
    other = [assign_variant(u, 0.1, "exp2") for u in units]
    assert other != first  # a new experiment reshuffles users
    # growing the split keeps everyone already in the candidate there
    assert all(
        assign_variant(u, 0.2, "exp") == "candidate"
        for u, v in zip(units, first, strict=True)
        if v == "candidate"
    )
