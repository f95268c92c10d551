"""The openai backend's HTTP pieces on their own: Retry-After, backoff, hang watch,
the AIMD limiter, the retry loop (against a scripted client) and the sync bridge."""

from __future__ import annotations

import asyncio
import email.utils
import threading
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from tunecheck.models.http import retry as retry_mod
from tunecheck.models.http.limiter import HISTORY_CAP, AdaptiveConcurrency, RequestStats
from tunecheck.models.http.retry import (
    RETRY_AFTER_CAP,
    HangWatch,
    RetryPolicy,
    post_with_retries,
    retry_after,
)
from tunecheck.models.http.sync import run_sync
from tunecheck.models.http.transport import Failure, Reply, server_message

NOW = 1_700_000_000.0  # a fixed clock for HTTP dates


# ----------------------------------------------------------------------------- Retry-After


def test_retry_after_seconds_and_milliseconds() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": "1.5"}) == 1.5
    assert retry_after({"retry-after-ms": "250"}) == pytest.approx(0.25)
    # the millisecond header wins when both are sent
    assert retry_after({"retry-after-ms": "100", "retry-after": "9"}) == pytest.approx(0.1)
    # an unreadable millisecond header falls back to Retry-After
    assert retry_after({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0


def test_retry_after_is_bounded_and_ignores_garbage() -> None:
    assert retry_after({"retry-after": "-5"}) == 0.0
    assert retry_after({"retry-after": "3600"}) == RETRY_AFTER_CAP == 120.0
    assert retry_after({"retry-after-ms": "999999999"}) == RETRY_AFTER_CAP
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({"retry-after": ""}) is None
    assert retry_after({}) is None


def test_retry_after_http_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_mod.time, "time", lambda: NOW)

    def date(offset: float) -> dict[str, str]:
        return {"retry-after": email.utils.formatdate(NOW + offset, usegmt=True)}

    assert retry_after(date(30)) == pytest.approx(30.0)
    assert retry_after(date(-30)) == 0.0  # a date in the past: retry now
    assert retry_after(date(86_400)) == RETRY_AFTER_CAP
    # httpx's headers (case-insensitive) work as they come from a response
    headers = httpx.Headers({"Retry-After": email.utils.formatdate(NOW + 12, usegmt=True)})
    assert retry_after(headers) == pytest.approx(12.0)


# ----------------------------------------------------------------------------- backoff


def test_backoff_ceiling_doubles_up_to_the_maximum() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30.0)
    assert [policy.ceiling(k) for k in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert RetryPolicy(backoff_base=0.0).ceiling(5) == 0.0


def test_backoff_is_full_jitter_within_the_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[float, float]] = []
    monkeypatch.setattr(retry_mod.random, "uniform", lambda a, b: calls.append((a, b)) or b)
    policy = RetryPolicy(backoff_base=0.25, backoff_max=3.0)
    assert [policy.backoff(k) for k in (0, 2, 5)] == [0.25, 1.0, 3.0]
    assert calls == [(0.0, 0.25), (0.0, 1.0), (0.0, 3.0)]
    monkeypatch.undo()
    samples = [policy.backoff(3) for _ in range(500)]
    assert all(0.0 <= s <= 2.0 for s in samples)
    assert max(samples) > 1.0 and min(samples) < 1.0  # spread over the range, not a constant


# ----------------------------------------------------------------------------- hang watch


def test_hang_watch_counts_timeouts_only_before_the_first_answer() -> None:
    watch = HangWatch(hang_after=3)
    assert [watch.on_timeout() for _ in range(3)] == [False, False, True]
    answered = HangWatch(hang_after=2)
    answered.on_timeout()
    answered.on_answer()
    assert not any(answered.on_timeout() for _ in range(10))
    assert answered.silent_timeouts == 1
    never = HangWatch(hang_after=0)
    assert not any(never.on_timeout() for _ in range(50))


# ----------------------------------------------------------------------------- limiter


def test_limiter_halves_once_per_congestion_event_and_grows_back() -> None:
    async def scenario() -> AdaptiveConcurrency:
        lim = AdaptiveConcurrency(8)
        epochs = [await lim.acquire() for _ in range(8)]
        assert lim.in_flight == 8
        for e in epochs:  # eight 429s from requests admitted together: one event
            lim.on_throttle(e)
            lim.release()
        assert lim.limit == 4
        later = await lim.acquire()
        lim.on_throttle(later)  # admitted after the halving: a new event
        lim.release()
        assert lim.limit == 2
        for _ in range(2):  # `limit` successes in a row add one
            lim.on_success()
        assert lim.limit == 3
        for _ in range(100):
            lim.on_success()
        assert lim.limit == 8  # never above the maximum
        return lim

    lim = asyncio.run(scenario())
    assert lim.history == [8, 4, 2, 3, 4, 5, 6, 7, 8] and lim.lowest == 2


def test_limiter_respects_its_minimum_and_start() -> None:
    lim = AdaptiveConcurrency(16, start=3, minimum=2)
    assert (lim.limit, lim.minimum) == (3, 2)
    lim.on_throttle(0)
    lim.on_throttle(1)
    assert lim.limit == 2 and lim.history == [3, 2]
    assert AdaptiveConcurrency(4, start=99).limit == 4
    assert AdaptiveConcurrency(4, minimum=10).minimum == 4


def test_limiter_serves_waiters_in_order_and_wakes_them_on_growth() -> None:
    async def scenario() -> list[int]:
        lim = AdaptiveConcurrency(2, start=1)
        await lim.acquire()
        order: list[int] = []

        async def wait(i: int) -> None:
            await lim.acquire()
            order.append(i)

        waiters = [asyncio.create_task(wait(i)) for i in range(3)]
        await asyncio.sleep(0)
        assert order == [] and lim.in_flight == 1
        lim.on_success()  # limit 1 -> 2: one waiter gets the new slot
        await asyncio.sleep(0)
        assert order == [0]
        lim.release()
        await asyncio.sleep(0)
        assert order == [0, 1] and lim.in_flight == 2
        waiters[2].cancel()  # a cancelled waiter gives up its place without leaking a slot
        await asyncio.gather(*waiters, return_exceptions=True)
        lim.release()
        lim.release()
        assert lim.in_flight == 0
        return order

    assert asyncio.run(scenario()) == [0, 1]


def test_stats_absorb_the_limiters_history_with_a_cap() -> None:
    stats = RequestStats(concurrency_min=8, concurrency_changes=[8])
    lim = AdaptiveConcurrency(8)
    lim.on_throttle(0)
    lim.on_throttle(1)
    stats.absorb(lim)
    assert stats.concurrency_min == 2 and stats.concurrency_changes == [8, 4, 2]
    full = RequestStats(concurrency_changes=[1] * (HISTORY_CAP - 1))
    full.absorb(lim)
    assert len(full.concurrency_changes) == HISTORY_CAP and full.concurrency_changes[-1] == 4


# ----------------------------------------------------------------------------- retry loop


class ScriptedClient:
    """Answers POSTs from a script: a Reply, or an exception to raise."""

    def __init__(self, script: Iterable[Reply | BaseException]) -> None:
        self.script = list(script)
        self.calls = 0

    async def post(self, path: str, content: bytes) -> Reply:
        item = self.script[self.calls]
        self.calls += 1
        if isinstance(item, BaseException):
            raise item
        return item


def ok(body: str = '{"choices": [1]}') -> Reply:
    return Reply(200, {}, body.encode())


def status(code: int, body: str = '{"error": {"message": "nope"}}', **headers: str) -> Reply:
    return Reply(code, headers, body.encode())


def send(
    client: ScriptedClient,
    *,
    retries: int = 3,
    hang: HangWatch | None = None,
    parse: Any = None,
    lim: AdaptiveConcurrency | None = None,
) -> tuple[Any, RequestStats]:
    stats = RequestStats()
    policy = RetryPolicy(max_retries=retries, backoff_base=0.0, timeout=5.0)

    async def go() -> Any:
        return await post_with_retries(
            client,  # type: ignore[arg-type]
            lim or AdaptiveConcurrency(4),
            "chat/completions",
            b"{}",
            policy=policy,
            stats=stats,
            hang=hang or HangWatch(0),
            on_hang=lambda: RuntimeError("hanging"),
            parse=parse,
        )

    try:
        return asyncio.run(go()), stats
    except BaseException as err:
        return err, stats


def test_retries_server_errors_then_returns_the_parsed_answer() -> None:
    client = ScriptedClient([status(503), status(429, **{"retry-after-ms": "0"}), ok()])
    lim = AdaptiveConcurrency(4)
    got, stats = send(client, parse=lambda d: d["choices"], lim=lim)
    assert got == [1] and client.calls == 3
    assert (stats.http_calls, stats.retries, stats.server_errors, stats.throttled) == (3, 2, 1, 1)
    assert lim.limit == 2 and lim.in_flight == 0  # the 429 throttled; every slot came back


def test_a_client_error_is_not_retried() -> None:
    client = ScriptedClient([status(400), ok()])
    err, stats = send(client)
    assert isinstance(err, Failure) and err.status == 400 and err.message == "HTTP 400: nope"
    assert client.calls == 1 and stats.retries == 0


def test_every_attempt_failing_names_the_count_and_the_last_problem() -> None:
    client = ScriptedClient([status(500), ok("not json"), ConnectionRefusedError("refused")])
    err, stats = send(client, retries=2)
    assert isinstance(err, Failure) and err.connect
    assert (
        err.message == "failed after 3 attempts: connection error (ConnectionRefusedError: refused)"
    )
    assert (stats.server_errors, stats.malformed, stats.dropped) == (1, 1, 1)


def test_a_rejected_answer_is_retried_as_malformed() -> None:
    def parse(data: dict[str, Any]) -> Any:
        if not data["choices"]:
            raise Failure("the server answered without choices")
        return data["choices"][0]

    client = ScriptedClient([ok('{"choices": []}'), ok("[1, 2]"), ok('{"choices": [5]}')])
    got, stats = send(client, parse=parse)
    assert got == 5 and stats.malformed == 2  # a JSON list is wrapped, then fails to parse
    err, _ = send(ScriptedClient([ok('{"choices": []}')]), retries=0, parse=parse)
    assert isinstance(err, Failure) and err.message == "the server answered without choices"


def test_silent_timeouts_raise_the_hang_error_but_not_after_an_answer() -> None:
    err, stats = send(ScriptedClient([TimeoutError()] * 5), retries=4, hang=HangWatch(3))
    assert isinstance(err, RuntimeError) and str(err) == "hanging" and stats.timeouts == 3
    watch = HangWatch(2)
    watch.on_answer()
    err, stats = send(ScriptedClient([TimeoutError()] * 3), retries=2, hang=watch)
    assert isinstance(err, Failure)
    assert err.message == "failed after 3 attempts: timed out after 5 s"


# ----------------------------------------------------------------------------- transport, sync


def test_server_message_reads_openai_style_errors() -> None:
    assert server_message(status(404, '{"error": {"message": "no such model"}}')) == "no such model"
    assert server_message(status(422, '{"detail": "bad field"}')) == "bad field"
    assert server_message(status(500, "  upstream exploded \n")) == "upstream exploded"
    assert server_message(status(502, "")) == "HTTP 502"
    assert server_message(status(500, "x" * 1000)) == "x" * 300


def test_run_sync_inside_a_running_loop_uses_a_worker_thread() -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert run_sync(where) == threading.current_thread().name

    async def caller() -> str:
        return run_sync(where, thread_name="probe-thread")

    assert asyncio.run(caller()).startswith("probe-thread")
