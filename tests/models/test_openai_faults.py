"""The ``openai`` backend against the fault-injecting server: retries, AIMD, errors, secrets."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading

import pytest
from openai_servers import FaultServer, canned_answer, canned_logprob, closed_port_url

from tunecheck.errors import BackendError
from tunecheck.models import (
    GenerationParams,
    GenerationRequest,
    LoglikelihoodRequest,
    load_model,
)
from tunecheck.models.openai_compat import AdaptiveConcurrency, OpenAIModel

KEY_ENV = "TUNECHECK_TEST_OPENAI_KEY"
KEY = "sk-test-0123456789-very-secret"
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture()
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def reqs(ids, **params) -> list[GenerationRequest]:
    p = GenerationParams(**params)
    return [GenerationRequest(prompt=f"id={i}", params=p, id=str(i)) for i in ids]


ALWAYS_FAIL = {7, 77, 177}  # 500 every time, and the message quotes the Authorization header
FAIL_FAST = {17, 117}  # 400: never retried


def chaos(rid: str, attempt: int) -> str:
    """Faults by id; all but the two sets above succeed on a later attempt. No fault here waits
    for the client's timeout (those are in the hang tests below), so the client's timeout can be
    far above any scheduling stall: no answer is ever abandoned and re-asked on a slow machine,
    which keeps every attempt count exact."""
    k = int(rid)
    if k in ALWAYS_FAIL:
        return "leak"
    if k in FAIL_FAST:
        return "400"
    first = attempt == 1
    if k % 20 == 1:
        return "429" if first else "ok"
    return {
        2: ("500", "503")[attempt - 1] if attempt <= 2 else "ok",
        4: "drop" if first else "ok",
        5: "drop_mid" if first else "ok",
        6: "503" if attempt <= 3 else "ok",
    }.get(k % 10, "ok")


def test_every_request_answered_or_recorded_none_lost_none_duplicated(api_key: str) -> None:
    # the timeout is far above any scheduling stall on a loaded machine: a response the server
    # sent after the client gave up would (rightly) be asked for again and counted twice
    n, retries, concurrency = 200, 3, 16
    with FaultServer(chaos, api_key=api_key, delay=0.002) as server:
        model = load_model(
            f"openai:fault-model@{server.url}",
            api_key_env=KEY_ENV,
            concurrency=concurrency,
            timeout=120,
            max_retries=retries,
            **FAST,
        )
        done: list[int] = []
        out = model.generate(reqs(range(n)), progress=done.append)
        fingerprint = model.fingerprint

    assert len(out) == n and sum(done) == n
    failing = ALWAYS_FAIL | FAIL_FAST
    for i, gen in enumerate(out):
        rid = str(i)
        if i in failing:
            assert not gen.ok and gen.texts == [], i
            assert server.successes[rid] == 0
        else:
            # the right answer for this id (no mix-ups), produced exactly once by the server
            assert gen.ok, (i, gen.error)
            assert gen.texts == [canned_answer(rid)]
            assert server.successes[rid] == 1, i
            assert gen.prompt_tokens == 7 and gen.completion_tokens == 3
    assert sum(server.successes.values()) == n - len(failing)
    # 4xx fails fast; retried faults use exactly max_retries + 1 attempts
    for i in FAIL_FAST:
        assert server.attempts[str(i)] == 1
        assert out[i].error.startswith("HTTP 400")
    for i in ALWAYS_FAIL:
        assert server.attempts[str(i)] == retries + 1
        assert f"failed after {retries + 1} attempts" in out[i].error
    assert server.attempts["6"] == 4 and server.attempts["2"] == 3  # 503 x3 then ok; 500, 503, ok
    assert server.attempts["3"] == 1 and server.attempts["4"] == 2 and server.attempts["5"] == 2
    assert server.peak_in_flight <= concurrency
    stats = model.stats
    assert (stats.requests, stats.ok, stats.errors) == (n, n - len(failing), len(failing))
    assert stats.throttled == 10 and stats.timeouts == 0 and stats.dropped == 40
    # the key never leaks: scrubbed from the echoing error, absent from repr and fingerprint
    assert "Authorization: Bearer ***" in out[7].error
    texts = [g.error or "" for g in out] + [repr(model), fingerprint, str(model.stats)]
    assert not any(KEY in t for t in texts)
    assert KEY_ENV in repr(model)


def test_a_request_that_always_hangs_ends_as_a_timeout_error() -> None:
    """The server never answers id 1 (it waits for the client to close): every attempt ends in
    the client's timeout whatever the machine's speed, so the counts are exact."""
    plan = lambda rid, attempt: "hang" if rid == "1" else "ok"  # noqa: E731
    with FaultServer(plan) as server:
        model = OpenAIModel("fault-model", server.url, timeout=0.3, max_retries=2, **FAST)
        out = model.generate(reqs([1]))
        # the server still serves others; a generous timeout so no stall can cost a retry
        patient = OpenAIModel("fault-model", server.url, timeout=120, max_retries=0)
        other = patient.generate(reqs([0]))
    assert not out[0].ok and "timed out after 0.3 s" in out[0].error
    assert "failed after 3 attempts" in out[0].error
    assert server.attempts["1"] == 3 and server.successes["1"] == 0
    assert model.stats.timeouts == 3 and model.stats.errors == 1
    assert other[0].text == canned_answer("0") and server.attempts["0"] == 1


def test_a_hang_then_an_answer_is_retried_once() -> None:
    """First attempt hangs until the client times out, the second is answered: exactly two
    attempts and one success (the chaos test's former hang case, on its own)."""
    plan = lambda rid, attempt: "hang" if attempt == 1 else "ok"  # noqa: E731
    with FaultServer(plan) as server:
        model = OpenAIModel("fault-model", server.url, timeout=0.3, max_retries=3, **FAST)
        out = model.generate(reqs([3]))
    assert out[0].text == canned_answer("3")
    # the answer to attempt 2 is sent at once; a client stall over 0.3 s could only add
    # attempts that the server then answers too, so count what the server saw
    assert server.attempts["3"] >= 2 and server.successes["3"] >= 1
    assert server.planned["3"] == server.attempts["3"]
    assert model.stats.timeouts == server.attempts["3"] - server.successes["3"]


def test_retry_after_is_honoured() -> None:
    plan = lambda rid, attempt: "429" if attempt == 1 else "ok"  # noqa: E731
    with FaultServer(plan, retry_after="0.3") as server:
        model = OpenAIModel("fault-model", server.url, backoff_base=0.001, backoff_max=0.001)
        out = model.generate(reqs([1]))
    assert out[0].text == canned_answer("1")
    first, second = server.attempt_times["1"]
    assert second - first >= 0.29


def test_retry_after_ms_and_http_date() -> None:
    from email.utils import formatdate

    from tunecheck.models.openai_compat import _retry_after

    assert _retry_after({"retry-after-ms": "250"}) == pytest.approx(0.25)
    assert _retry_after({"retry-after": "2"}) == 2.0
    date = _retry_after({"retry-after": formatdate(usegmt=True)})
    assert date is not None and 0.0 <= date <= 1.0
    assert _retry_after({"retry-after": "soon"}) is None and _retry_after({}) is None


@pytest.mark.slow
def test_concurrency_drops_on_429_and_recovers() -> None:
    # the server takes 4 requests at a time; the client starts at 16
    with FaultServer(capacity=4, delay=0.02, retry_after="0.02") as server:
        model = OpenAIModel("fault-model", server.url, concurrency=16, max_retries=20, **FAST)
        out = model.generate(reqs(range(120)))
        assert all(g.ok for g in out)
        assert server.throttled > 0 and model.stats.throttled == server.throttled
        low = model.stats.concurrency_min
        assert low <= 8  # halved at least once
        assert model.stats.concurrency_changes[0] == 16

        # capacity restored: additive increase brings the limit back to the maximum
        server.capacity, server.delay = None, 0.0
        throttled_before = server.throttled
        out = model.generate(reqs(range(1000, 1300)))
        assert all(g.ok for g in out)
        assert server.throttled == throttled_before
    changes = model.stats.concurrency_changes
    assert changes[-1] == 16 and max(changes) == 16
    assert server.peak_in_flight <= 16


def test_aimd_arithmetic() -> None:
    async def scenario() -> AdaptiveConcurrency:
        lim = AdaptiveConcurrency(8)
        e = await lim.acquire()
        lim.on_throttle(e)
        lim.on_throttle(e)  # same congestion event: halves once
        assert lim.limit == 4
        lim.release()
        e2 = await lim.acquire()
        lim.on_throttle(e2)
        assert lim.limit == 2
        lim.release()
        for _ in range(2):
            lim.on_success()
        assert lim.limit == 3
        for _ in range(100):
            lim.on_success()
        assert lim.limit == 8  # never above the maximum
        for _ in range(10):
            lim.on_throttle(lim._epoch)
        assert lim.limit == 1  # never below one
        return lim

    lim = asyncio.run(scenario())
    assert lim.history[:4] == [8, 4, 2, 3] and lim.lowest == 1


def test_limiter_blocks_at_limit_and_hands_over_in_order() -> None:
    async def scenario() -> list[int]:
        lim = AdaptiveConcurrency(2)
        order: list[int] = []

        async def worker(i: int) -> None:
            await lim.acquire()
            order.append(i)
            await asyncio.sleep(0.01)
            lim.release()

        await asyncio.gather(*(worker(i) for i in range(6)))
        assert lim.in_flight == 0
        return order

    assert asyncio.run(scenario()) == list(range(6))


def test_wrong_key_on_first_request_raises_naming_url_model_and_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-value-42")
    with FaultServer(api_key=KEY) as server:
        model = OpenAIModel("fault-model", server.url, api_key_env=KEY_ENV, **FAST)
        with pytest.raises(BackendError) as err:
            model.generate(reqs(range(5)))
        assert server.attempts == {}  # refused before any completion was attempted
        with pytest.raises(BackendError) as err2:
            _ = model.fingerprint
    for e in (err.value, err2.value):
        text = str(e)
        assert server.url in text and "fault-model" in text and "(HTTP 401: Incorrect" in text
        assert KEY_ENV in text and "sk-wrong-key-value-42" not in text


def test_unknown_model_raises_listing_served_models() -> None:
    with FaultServer() as server:
        model = OpenAIModel("no-such-model", server.url, **FAST)
        with pytest.raises(BackendError) as err:
            model.generate(reqs([1, 2]))
    text = str(err.value)
    assert "no-such-model" in text and server.url in text
    assert "served models: fault-model" in text  # looked up for the message
    assert "HTTP 404: HTTP" not in text


def test_wrong_path_raises_hint_about_v1() -> None:
    with FaultServer() as server:
        url = server.url.removesuffix("/v1")
        with pytest.raises(BackendError) as err:
            OpenAIModel("fault-model", url, **FAST).generate(reqs([1]))
    assert "/v1" in str(err.value) and "does not exist" in str(err.value)


def test_no_server_raises_once() -> None:
    url = closed_port_url()
    model = OpenAIModel("m", url, max_retries=1, **FAST)
    with pytest.raises(BackendError, match="no OpenAI-compatible server answers"):
        model.generate(reqs(range(50)))
    assert model.stats.http_calls == 2  # only the first request tried (and retried once)
    with pytest.raises(BackendError, match=url.replace(".", r"\.")):
        _ = model.fingerprint


def test_later_4xx_is_a_per_request_error_not_an_exception() -> None:
    plan = lambda rid, attempt: "400" if rid == "3" else "ok"  # noqa: E731
    with FaultServer(plan) as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        out = model.generate(reqs(range(6)))
    assert [g.ok for g in out] == [True, True, True, False, True, True]
    assert "maximum context length" in out[3].error


def test_malformed_success_answers() -> None:
    def plan(rid: str, attempt: int) -> str:
        if rid == "1":
            return "error200"
        return "notjson" if rid == "2" and attempt == 1 else "ok"

    with FaultServer(plan) as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        out = model.generate(reqs([0, 1, 2]))
    assert out[0].text == canned_answer("0")
    # a failure wrapped in a 200 is retried like any server error, then recorded
    retries = model.max_retries
    assert out[1].error == (
        f"failed after {retries + 1} attempts: the server answered without choices: engine crashed"
    )
    assert server.attempts["1"] == retries + 1
    assert out[2].text == canned_answer("2") and server.attempts["2"] == 2  # not JSON: asked again


def test_n_samples_native_and_fallback_with_distinct_seeds() -> None:
    with FaultServer(n_supported=True) as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        out = model.generate(reqs([1], n=3, temperature=0.7, seed=5))
    assert out[0].texts == [canned_answer("1", 5, i) for i in range(3)]
    assert server.attempts["1"] == 1 and server.bodies[0]["n"] == 3

    with FaultServer(n_supported=False) as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        out = model.generate(reqs([1, 2], n=3, temperature=0.7, seed=5))
        assert model._n_supported is False
        # once known, later requests go straight to one request per sample
        out2 = model.generate(reqs([3], n=2, temperature=0.7, seed=0))
    assert out[0].texts == [canned_answer("1", s) for s in (5, 6, 7)]
    assert out[1].texts == [canned_answer("2", s) for s in (5, 6, 7)]
    assert out[0].completion_tokens == 9
    assert sorted(server.seeds["1"]) == [5, 6, 7]
    assert out2[0].texts == [canned_answer("3", 0), canned_answer("3", 1)]
    assert server.attempts["3"] == 2 and all("n" not in b for b in server.bodies[-2:])


def test_parameters_are_mapped_and_stop_applied_client_side() -> None:
    with FaultServer() as server:
        model = OpenAIModel("fault-model", server.url, extra_body={"top_k": 3}, **FAST)
        params = GenerationParams(max_new_tokens=9, temperature=0.5, top_p=0.9, stop=("-",), seed=3)
        msgs = ({"role": "system", "content": "be brief"}, {"role": "user", "content": "id=42"})
        out = model.generate([GenerationRequest(prompt=msgs, params=params)])
    body = server.bodies[0]
    assert body["messages"] == [dict(m) for m in msgs]
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (9, 0.5, 0.9)
    assert (body["stop"], body["seed"], body["top_k"], body["model"]) == (
        ["-"],
        3,
        3,
        "fault-model",
    )
    # the server ignores stop; the client cuts "answer-42/seed3/choice0" at "-"
    assert out[0].texts == ["answer"]


def test_endpoint_routing() -> None:
    with FaultServer() as server:
        auto = OpenAIModel("fault-model", server.url, **FAST)
        auto.generate(
            [
                GenerationRequest(prompt="id=1"),
                GenerationRequest(prompt=({"role": "user", "content": "id=2"},)),
            ]
        )
        assert "prompt" in server.bodies[0] and "messages" in server.bodies[1]
        chat = OpenAIModel("fault-model", server.url, endpoint="chat", **FAST)
        out = chat.generate(reqs([3]))
        assert server.bodies[2]["messages"] == [{"role": "user", "content": "id=3"}]
        assert out[0].text == canned_answer("3")
    completions = OpenAIModel("fault-model", server.url, endpoint="completions")
    with pytest.raises(BackendError, match="cannot send chat messages"):
        completions.generate([GenerationRequest(prompt=({"role": "user", "content": "x"},))])


def test_generate_from_a_thread_and_inside_a_running_loop() -> None:
    with FaultServer() as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        box: list = []
        t = threading.Thread(target=lambda: box.append(model.generate(reqs([1, 2]))))
        t.start()
        t.join(30)

        async def inside_loop() -> tuple[list, list]:
            blocking = model.generate(reqs([3]))  # runs on a worker thread
            awaited = await model.agenerate(reqs([4]))
            return blocking, awaited

        blocking, awaited = asyncio.run(inside_loop())
    assert [g.text for g in box[0]] == [canned_answer("1"), canned_answer("2")]
    assert blocking[0].text == canned_answer("3") and awaited[0].text == canned_answer("4")


def _identity(url: str, served: str) -> str:
    """The fingerprinted text: sorted-key JSON of URL, model, served id and default options."""
    options = {"extra_body": {}, "headers": {}}  # endpoint at its default (None) is left out
    return json.dumps(
        {
            "backend": "openai",
            "base_url": url,
            "model": "fault-model",
            "served": served,
            "options": options,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def test_fingerprint_is_url_model_and_served_id_never_the_key(api_key: str) -> None:
    with FaultServer(api_key=api_key, root="/weights/a") as a:
        fp = OpenAIModel("fault-model", a.url, api_key_env=KEY_ENV).fingerprint
        expected = _identity(a.url, json.dumps(["fault-model", "/weights/a"]))
        assert fp == hashlib.sha256(expected.encode()).hexdigest()
        assert OpenAIModel("fault-model", a.url + "/", api_key_env=KEY_ENV).fingerprint == fp
    with FaultServer(api_key=api_key, root="/weights/b") as b:
        fp_b = OpenAIModel("fault-model", b.url, api_key_env=KEY_ENV).fingerprint
        b_again = _identity(b.url, json.dumps(["fault-model", "/weights/a"]))
        assert fp_b != hashlib.sha256(b_again.encode()).hexdigest()  # other weights, other print
    with FaultServer(models_route=False) as c:
        fp_c = OpenAIModel("fault-model", c.url).fingerprint
        plain = _identity(c.url, "fault-model")
        assert fp_c == hashlib.sha256(plain.encode()).hexdigest()
    assert KEY not in fp + fp_b


def test_fingerprint_survives_a_passing_models_error_and_refuses_to_guess() -> None:
    with FaultServer(models_errors=1) as flaky:
        recovered = OpenAIModel("fault-model", flaky.url, backoff_base=0.01).fingerprint
        assert flaky.models_calls == 2
        # the served identity, as if the 503 had never happened
        expected = _identity(flaky.url, json.dumps(["fault-model", flaky.root]))
        assert recovered == hashlib.sha256(expected.encode()).hexdigest()
    with FaultServer(models_errors=99) as down:
        with pytest.raises(BackendError, match="could not read the served model"):
            _ = OpenAIModel("fault-model", down.url, backoff_base=0.01).fingerprint
        assert down.models_calls == 3


def test_loglikelihood_parses_echoed_prompt_logprobs() -> None:
    with FaultServer() as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        out = model.loglikelihood(
            [
                LoglikelihoodRequest("The sky is", " blue today"),
                LoglikelihoodRequest("The sky is", " wrong"),
                LoglikelihoodRequest("The sk", "y is"),  # the boundary splits " sky"
                LoglikelihoodRequest("", "id=9 x"),  # no context: first token has no logprob
            ]
        )
    assert server.bodies[0]["echo"] is True and server.bodies[0]["max_tokens"] == 0
    assert server.bodies[0]["logprobs"] == 1
    # tokens "The", " sky", " is", " blue", " today": logprobs None, -.2, -.3, -.4, -.5
    assert out[0].logprob == pytest.approx(canned_logprob(3) + canned_logprob(4))
    assert (out[0].n_tokens, out[0].is_greedy) == (2, True)
    assert out[1].logprob == pytest.approx(-0.4) and out[1].is_greedy is False
    # a straddling token counts as continuation
    assert out[2].logprob == pytest.approx(-0.2 - 0.3) and out[2].n_tokens == 2
    assert out[3].error and "first token" in out[3].error and math.isnan(out[3].logprob)
    assert model.supports_loglikelihood is True


def test_loglikelihood_falls_back_to_one_generated_token() -> None:
    with FaultServer(logprobs="needs_tokens") as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        out = model.loglikelihood([LoglikelihoodRequest("The sky is", " blue today")] * 3)
    assert [b["max_tokens"] for b in server.bodies] == [0, 1, 1, 1]
    # the generated " X" (-0.05) is not part of the continuation
    assert [r.logprob for r in out] == pytest.approx([-0.9] * 3)
    assert all(r.n_tokens == 2 for r in out)


@pytest.mark.parametrize("mode", ["none", "refuse"])
def test_server_without_prompt_logprobs_names_the_probe(mode: str) -> None:
    with FaultServer(logprobs=mode) as server:
        model = OpenAIModel("fault-model", server.url, **FAST)
        reqs_ll = [LoglikelihoodRequest("Q: 2+2? A:", f" {c}") for c in "ABCD"] * 10
        with pytest.raises(BackendError) as err:
            model.loglikelihood(reqs_ll, purpose="the mmlu probe")
        sent = len(server.bodies)
        with pytest.raises(BackendError):  # known now: fails without asking again
            model.loglikelihood(reqs_ll[:2], purpose="the mmlu probe")
        assert len(server.bodies) == sent
    text = str(err.value)
    assert "no prompt log-probabilities" in text and "the mmlu probe" in text
    assert "mode: generate" in text and server.url in text
    assert model.supports_loglikelihood is False
    assert sent <= 2  # the first request alone found out; the other 39 were never sent


def test_bad_options_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNECHECK_UNSET_KEY", raising=False)
    url = "http://127.0.0.1:9/v1"
    with pytest.raises(BackendError, match="TUNECHECK_UNSET_KEY is not set"):
        load_model(f"openai:m@{url}", api_key_env="TUNECHECK_UNSET_KEY")
    with pytest.raises(BackendError, match="NAME of an environment variable") as err:
        load_model(f"openai:m@{url}", api_key_env="sk-abc/def+ghi")
    assert "sk-abc/def+ghi" not in str(err.value)
    with pytest.raises(BackendError, match="unknown option"):
        load_model(f"openai:m@{url}", batch_size=8)
    with pytest.raises(BackendError, match="endpoint must be one of"):
        load_model(f"openai:m@{url}", endpoint="responses")
    with pytest.raises(BackendError, match="concurrency"):
        load_model(f"openai:m@{url}", concurrency=0)
    with pytest.raises(BackendError, match="names no server"):
        load_model("openai:just-a-name")
    with pytest.raises(BackendError, match="not an http"):
        load_model("openai:m", base_url="ftp://example")
    m = load_model("openai:org/model@v2@http://127.0.0.1:8000/v1/", concurrency="4")
    assert (m.model, m.base_url, m.concurrency) == ("org/model@v2", "http://127.0.0.1:8000/v1", 4)
    assert load_model("openai:m", base_url=url).base_url == url
