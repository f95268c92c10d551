"""Reading OpenAI-compatible answers: plain JSON bodies and server-sent event streams.

The proxy never changes what it forwards; these helpers only extract, for the log,
the answer text, token counts, finish reason and error message of one response.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")
_SK = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")
MAX_ERROR_CHARS = 500


@dataclass
class Answer:
    """What the log keeps of one response (text is None when there was none)."""

    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every known key, bearer token and ``sk-`` key replaced by ``***``.

    Upstream errors sometimes quote the request headers; nothing that looks like a
    key may reach the store or the logs.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    return _SK.sub("***", text)


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """The body without its transfer compression (gzip/deflate); unchanged otherwise."""
    enc = (content_encoding or "").strip().lower()
    try:
        if enc == "gzip":
            return gzip.decompress(body)
        if enc == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except (OSError, EOFError, zlib.error):
        return b""
    return body


def _usage(obj: dict[str, Any], ans: Answer) -> None:
    usage = obj.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("prompt_tokens"), int):
            ans.prompt_tokens = usage["prompt_tokens"]
        if isinstance(usage.get("completion_tokens"), int):
            ans.completion_tokens = usage["completion_tokens"]


def _error_message(obj: Any, raw: bytes) -> str:
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if obj.get("detail"):
            return str(obj["detail"])
    return raw[:MAX_ERROR_CHARS].decode("utf-8", "replace")


def parse_json_answer(body: bytes, status: int) -> Answer:
    """An ``/v1/chat/completions`` or ``/v1/completions`` JSON response."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        obj = None
    if status >= 400:
        return Answer(error=f"HTTP {status}: {_error_message(obj, body)}")
    if not isinstance(obj, dict):
        return Answer(error=f"HTTP {status}: the body is not a JSON object")
    ans = Answer()
    _usage(obj, ans)
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        ans.error = f"HTTP {status}: no choices in the answer ({_error_message(obj, body)})"
        return ans
    first = choices[0]
    message = first.get("message")
    if isinstance(message, dict):
        ans.text = message.get("content") if isinstance(message.get("content"), str) else ""
    else:
        ans.text = first.get("text") if isinstance(first.get("text"), str) else ""
    ans.finish_reason = first.get("finish_reason")
    return ans


def parse_sse_answer(body: bytes, status: int) -> Answer:
    """A streamed answer: ``data: {...}`` events up to ``data: [DONE]``, deltas joined."""
    if status >= 400:
        return parse_json_answer(body, status)
    ans = Answer()
    parts: list[str] = []
    done = False
    for raw_line in body.split(b"\n"):
        line = raw_line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            break
        try:
            obj = json.loads(data)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("error"):
            ans.error = f"stream error: {_error_message(obj, data)}"
        _usage(obj, ans)
        for choice in obj.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if isinstance(piece, str):
                parts.append(piece)
            if choice.get("finish_reason"):
                ans.finish_reason = choice["finish_reason"]
    ans.text = "".join(parts)
    if not done and ans.error is None:
        ans.error = "stream ended without [DONE]"
    return ans


def parse_answer(body: bytes, status: int, content_type: str | None) -> Answer:
    """Dispatch on the content type: event streams vs JSON."""
    if "text/event-stream" in (content_type or "").lower():
        return parse_sse_answer(body, status)
    return parse_json_answer(body, status)


def request_fingerprint(payload: dict[str, Any] | None, body: bytes) -> tuple[str, int]:
    """(sha256, characters) of what the user asked: the messages or the prompt."""
    if isinstance(payload, dict):
        what = payload.get("messages", payload.get("prompt"))
        text = json.dumps(what, sort_keys=True, ensure_ascii=False)
        return sha256(text), len(_input_text(what))
    return sha256(body), len(body)


def _input_text(what: Any) -> str:
    if isinstance(what, str):
        return what
    if isinstance(what, list):
        out = []
        for m in what:
            if isinstance(m, dict):
                c = m.get("content")
                out.append(c if isinstance(c, str) else json.dumps(c, ensure_ascii=False))
            else:
                out.append(str(m))
        return "\n".join(out)
    return "" if what is None else json.dumps(what, ensure_ascii=False)
