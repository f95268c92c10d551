"""The ``openai`` backend under bad servers: malformed answers, answers quoting the key,
servers that never answer, ``Retry-After`` on ``/models`` (issue 19, points 2, 4, 5)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_servers import FaultServer, canned_answer

from tunecheck.errors import BackendError
from tunecheck.models import GenerationParams, GenerationRequest
from tunecheck.models.base import LoglikelihoodRequest
from tunecheck.models.openai_compat import SCRUBBED, OpenAIModel, _Failure

KEY_ENV = "TUNECHECK_TEST_OPENAI_KEY"
KEY = "sk-test-reliability-9876543210"
FAST = {"backoff_base": 0.001, "backoff_max": 0.002}


def reqs(ids, **params) -> list[GenerationRequest]:
    p = GenerationParams(**params)
    return [GenerationRequest(prompt=f"id={i}", params=p, id=str(i)) for i in ids]


def chat_reqs(ids) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=({"role": "user", "content": f"id={i}"},)) for i in ids]


MALFORMED = {
    "1": '{"choices": ["text"]}',
    "2": '{"choices": [{"message": "text"}]}',
    "3": '{"choices": [{"index": 0, "message": {"role": "assistant", "content": null}}]}',
    "4": '{"choices": [{"message": {"content": ["a", "b"]}}]}',
    "5": '["not", "an", "object"]',
    "6": '{"choices": {"0": {"message": {"content": "x"}}}}',
    "7": '{"choices": [{"index": "first", "message": {"content": "ok"}}, 3]}',
}


def test_malformed_answers_are_retried_then_recorded_never_raised() -> None:
    def plan(rid: str, attempt: int) -> str:
        if rid == "8":  # malformed once, then fine: the retry rescues it
            return "json:" + MALFORMED["2"] if attempt == 1 else "ok"
        return "json:" + MALFORMED[rid] if rid in MALFORMED else "ok"

    with FaultServer(plan) as server:
        model = OpenAIModel("fault-model", server.url, max_retries=2, **FAST)
        out = model.generate(chat_reqs(range(10)))
    for rid in MALFORMED:
        gen = out[int(rid)]
        assert not gen.ok and gen.texts == [], rid
        assert gen.error.startswith("failed after 3 attempts: "), gen.error
        assert server.attempts[rid] == 3, rid
    assert "content: null" in out[3].error and "empty answer" in out[3].error
    assert "choices hold str" in out[1].error
    assert "no message object" in out[2].error
    assert out[8].text == canned_answer("8") and server.attempts["8"] == 2
    assert [g.text for g in (out[0], out[9])] == [canned_answer("0"), canned_answer("9")]
    assert model.stats.malformed == 3 * len(MALFORMED) + 1
    assert (model.stats.ok, model.stats.errors) == (3, len(MALFORMED))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_choice = st.fixed_dictionaries(
    {},
    optional={
        "index": _json,
        "message": _json | st.fixed_dictionaries({}, optional={"content": _json, "role": _json}),
        "text": _json,
    },
)
# shapes near the real one (choices of near-choices) and anything at all
_reply = (
    st.fixed_dictionaries(
        {},
        optional={"choices": _json | st.lists(_choice, max_size=3), "usage": _json, "error": _json},
    )
    | _json
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(reply=_reply, chat=st.booleans())
def test_the_answer_parser_accepts_or_fails_the_request_nothing_else(reply, chat: bool) -> None:
    data = reply if isinstance(reply, dict) else {"_": reply}
    try:
        texts = OpenAIModel._texts("chat" if chat else "completions", data)
    except _Failure:
        return
    assert texts and all(isinstance(t, str) for t in texts)


@pytest.fixture(scope="module")
def replying_server():
    """One server whose every answer is ``box[0]`` (set per hypothesis example)."""
    box = ['{"choices": []}']
    with FaultServer(lambda rid, attempt: "json:" + box[0]) as server:
        yield server, box


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reply=_reply, chat=st.booleans())
def test_random_json_from_the_server_is_an_answer_or_a_request_error(
    replying_server, reply, chat: bool
) -> None:
    server, box = replying_server
    box[0] = json.dumps(reply)
    model = OpenAIModel("fault-model", server.url, max_retries=1, **FAST)
    out = model.generate(chat_reqs([1]) if chat else reqs([1]))  # must not raise
    assert len(out) == 1
    gen = out[0]
    if gen.ok:
        assert gen.texts and all(isinstance(t, str) for t in gen.texts)
    else:
        assert gen.texts == [] and gen.error
    assert model.stats.requests == 1


def test_a_key_quoted_in_a_successful_answer_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    plan = lambda rid, attempt: "leak200" if rid == "1" else "ok"  # noqa: E731
    with FaultServer(plan, api_key=KEY) as server:
        model = OpenAIModel("fault-model", server.url, api_key_env=KEY_ENV, **FAST)
        out = model.generate(reqs(range(3)) + chat_reqs([1]))
    for gen in (out[1], out[3]):
        assert gen.ok and gen.text == "my headers said Authorization: Bearer ***"
        assert gen.meta == {SCRUBBED: True}
    assert out[0].meta == {} and out[0].text == canned_answer("0")
    assert model.stats.scrubbed == 2
    assert not any(KEY in t for g in out for t in g.texts)


def test_a_key_quoted_in_a_refused_log_likelihood_request_is_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the error raised when a server refuses echo + logprobs quotes the server's message
    monkeypatch.setenv(KEY_ENV, KEY)
    with FaultServer(lambda rid, attempt: "leak400", api_key=KEY) as server:
        model = OpenAIModel("fault-model", server.url, api_key_env=KEY_ENV, **FAST)
        with pytest.raises(BackendError) as info:
            model.loglikelihood([LoglikelihoodRequest("id=1 The sky is", " blue")])
    assert "bad request from Authorization: Bearer ***" in str(info.value)
    assert KEY not in str(info.value)


def test_a_server_that_never_answers_stops_the_run_early() -> None:
    with FaultServer(lambda rid, attempt: "hang") as server:
        model = OpenAIModel(
            "fault-model",
            server.url,
            timeout=0.2,
            max_retries=1,
            hang_after=4,
            concurrency=3,
            **FAST,
        )
        with pytest.raises(BackendError) as info:
            model.generate(reqs(range(50)))
    message = str(info.value)
    assert "accepts connections but answers nothing within 0.2 s" in message
    assert "4 requests timed out" in message
    # the first request alone (2 attempts), then at most 3 in flight when the 4th timed out
    # (a request can time out before the busy server has even read it: no lower bound)
    assert sum(server.attempts.values()) <= 4 + 2
    assert model.stats.timeouts >= 4 and model.stats.requests <= 1


def test_a_server_that_answered_before_is_not_called_hanging() -> None:
    # after one answer, timeouts are per-request errors as before, never a stop
    plan = lambda rid, attempt: "ok" if rid == "0" else "hang"  # noqa: E731
    with FaultServer(plan) as server:
        model = OpenAIModel(
            "fault-model",
            server.url,
            timeout=0.2,
            max_retries=0,
            hang_after=2,
            concurrency=4,
            **FAST,
        )
        out = model.generate(reqs(range(6)))
    assert out[0].ok and all(not g.ok and "timed out" in g.error for g in out[1:])
    assert sum(server.attempts.values()) == 6


def test_hang_after_zero_disables_the_check() -> None:
    with FaultServer(lambda rid, attempt: "hang") as server:
        model = OpenAIModel(
            "fault-model",
            server.url,
            timeout=0.2,
            max_retries=0,
            hang_after=0,
            concurrency=4,
            **FAST,
        )
        out = model.generate(reqs(range(5)))
    assert all("timed out" in g.error for g in out) and sum(server.attempts.values()) == 5


def test_models_identity_check_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    real_sleep = time.sleep

    def record(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(0)

    with FaultServer(models_errors=2, models_retry_after="7") as server:
        monkeypatch.setattr(time, "sleep", record)
        model = OpenAIModel("fault-model", server.url, backoff_base=0.001, backoff_max=0.001)
        fp = model.fingerprint
        monkeypatch.setattr(time, "sleep", real_sleep)
    assert fp and server.models_calls == 3
    assert waits == [7.0, 7.0]  # what the server asked for, not the 1 ms backoff


def test_the_scrubbed_flag_survives_the_cache_for_samples_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from tunecheck.models.cache import CachedModel
    from tunecheck.store import open_store

    monkeypatch.setenv(KEY_ENV, KEY)
    plan = lambda rid, attempt: "leak200" if rid == "1" else "ok"  # noqa: E731
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    sampled = dict(n=2, temperature=0.7, seed=3)
    with FaultServer(plan, api_key=KEY, n_supported=False) as server:
        model = OpenAIModel("fault-model", server.url, api_key_env=KEY_ENV, **FAST)
        first = CachedModel(model, store).generate(reqs([1, 2]) + reqs([1, 2], **sampled))
        again = CachedModel(model, store)
        second = again.generate(reqs([1, 2]) + reqs([1, 2], **sampled))
    assert again.calls == 0
    for out in (first, second):
        assert [bool(g.meta.get(SCRUBBED)) for g in out] == [True, False, True, False]
        assert out[2].texts == ["my headers said Authorization: Bearer ***"] * 2
    assert KEY.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
