"""When to try a request again and how long to wait: ``Retry-After``, backoff, the retry loop."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tunecheck.models.http.limiter import AdaptiveConcurrency, RequestStats
from tunecheck.models.http.transport import Connections, Failure, server_message

T = TypeVar("T")

#: longest wait taken from a server's ``Retry-After`` (a server asking for an hour is not obeyed)
RETRY_AFTER_CAP = 120.0


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date).

    ``headers`` is any mapping with lower-case ``get`` (a dict, httpx's headers). The
    result lies in ``[0, RETRY_AFTER_CAP]``; None when neither header says anything usable.
    """
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return min(RETRY_AFTER_CAP, max(0.0, float(ms) / 1000))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(RETRY_AFTER_CAP, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(RETRY_AFTER_CAP, max(0.0, when - time.time()))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one request is sent.

    ``max_retries`` retries follow the first attempt; the wait before retry ``k`` is
    uniform in ``[0, min(backoff_max, backoff_base * 2**k)]`` (full jitter) unless the
    server said when. ``timeout`` bounds one HTTP request, sending to last byte.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    timeout: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (full jitter)."""
        return random.uniform(0.0, self.ceiling(attempt))

    def ceiling(self, attempt: int) -> float:
        """The longest :meth:`backoff` can be for retry ``attempt``."""
        return min(self.backoff_max, self.backoff_base * 2**attempt)


@dataclass
class HangWatch:
    """Notices a server that accepts connections but answers nothing.

    Timeouts are counted until the server sends its first HTTP answer (any status);
    after that a timeout is only a slow request. With ``hang_after`` set, that many
    silent timeouts mean the server hangs. State lasts over the model's life.
    """

    hang_after: int = 8
    answered: bool = False
    silent_timeouts: int = 0

    def on_answer(self) -> None:
        self.answered = True

    def on_timeout(self) -> bool:
        """Count one timeout; True when the server is now judged hanging."""
        if self.answered:
            return False
        self.silent_timeouts += 1
        return bool(self.hang_after) and self.silent_timeouts >= self.hang_after


async def post_with_retries(
    client: Connections,
    limiter: AdaptiveConcurrency,
    path: str,
    content: bytes,
    *,
    policy: RetryPolicy,
    stats: RequestStats,
    hang: HangWatch,
    on_hang: Callable[[], BaseException],
    parse: Callable[[dict[str, Any]], T] | None = None,
) -> Any:
    """POST ``content`` with retries; returns ``parse(answer)`` (the JSON answer without ``parse``).

    Retried: timeouts, dropped connections, 429 (which also throttles ``limiter``),
    408 and 5xx, and a 200 answer that is not JSON or that ``parse`` rejects
    (:class:`Failure`, or any TypeError/ValueError/KeyError... from an unexpected
    shape). Another 4xx raises :class:`Failure` at once; so does the last failure
    when every attempt fails. When ``hang`` judges the server hanging, ``on_hang()``
    is raised. Every attempt holds a ``limiter`` slot and is counted in ``stats``.
    """
    import httpcore

    last = Failure("no attempt made")
    for attempt in range(policy.max_retries + 1):
        delay: float | None = None
        epoch = await limiter.acquire()
        stats.http_calls += 1
        try:
            async with asyncio.timeout(policy.timeout):
                resp = await client.post(path, content)
        except (TimeoutError, httpcore.TimeoutException):
            stats.timeouts += 1
            last = Failure(f"timed out after {policy.timeout:g} s")
            if hang.on_timeout():
                raise on_hang() from None
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as err:
            stats.dropped += 1
            last = Failure(
                f"connection error ({type(err).__name__}: {err})",
                connect=isinstance(err, httpcore.ConnectError | ConnectionRefusedError),
            )
        else:
            hang.on_answer()
            status = resp.status
            if status == 200:
                try:
                    data = resp.json()
                except ValueError:
                    stats.malformed += 1
                    last = Failure("the server sent a response that is not JSON", status)
                else:
                    data = data if isinstance(data, dict) else {"_": data}
                    try:
                        parsed = data if parse is None else parse(data)
                    except Failure as failure:
                        stats.malformed += 1
                        last = failure
                    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
                        stats.malformed += 1
                        last = Failure(f"malformed answer ({type(e).__name__}: {e})"[:400])
                    else:
                        limiter.on_success()
                        return parsed
            elif status == 429:
                stats.throttled += 1
                limiter.on_throttle(epoch)
                delay = retry_after(resp.headers)
                last = Failure(f"HTTP 429 (rate limited): {server_message(resp)}", status)
            elif status >= 500 or status == 408:
                stats.server_errors += 1
                delay = retry_after(resp.headers)
                last = Failure(f"HTTP {status}: {server_message(resp)}", status)
            else:
                # a client error will not go away by asking again
                raise Failure(f"HTTP {status}: {server_message(resp)}", status)
        finally:
            limiter.release()
        if attempt < policy.max_retries:
            stats.retries += 1
            await asyncio.sleep(delay if delay is not None else policy.backoff(attempt))
    if policy.max_retries:
        last.message = f"failed after {policy.max_retries + 1} attempts: {last.message}"
    raise last
