"""The ``openai`` backend: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, TGI, hosted APIs).

Reference: ``openai:MODEL@BASE_URL``, e.g. ``openai:Qwen/Qwen2.5-0.5B@http://127.0.0.1:8000/v1``.

Requests go out concurrently over one ``httpx.AsyncClient``. The number in flight
adapts to the server: it is halved on HTTP 429 and grows by one after a window of
successes (AIMD), never above ``concurrency``. Throttling, server errors, timeouts,
dropped connections and malformed answers (not JSON, no choices, ``content: null``)
are retried with exponential backoff and full jitter (``Retry-After`` is honoured,
on ``/models`` too). A request that still fails comes back as
``Generation(texts=[], error=...)``: counted and reported separately, never scored.
A server that accepts connections but answers nothing (the first ``hang_after``
requests all time out) stops the run with :class:`BackendError`.

The HTTP client (limiter, connections, retry loop) lives in :mod:`tunecheck.models.http`;
this module builds the request bodies, parses the answers, scores log-probabilities,
keeps the served model's identity and maps failures to :class:`BackendError`.

The API key is read from the environment variable named by ``api_key_env`` when a
client is built; it is never kept on the object or put in the fingerprint, and every
text that comes back (answers and error messages alike) has it replaced by ``***``
(an answer so scrubbed carries ``meta["api_key_scrubbed"]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tunecheck.errors import BackendError
from tunecheck.models.base import (
    Generation,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    Progress,
    backend,
)
from tunecheck.models.http import retry as _retry
from tunecheck.models.http import transport as _transport
from tunecheck.models.http.limiter import AdaptiveConcurrency, RequestStats
from tunecheck.models.http.retry import HangWatch, RetryPolicy, post_with_retries
from tunecheck.models.http.sync import run_sync
from tunecheck.models.identity import CREDENTIAL_HEADERS, identity_settings, stable_digest

T = TypeVar("T")

_REF = re.compile(r"^(?P<model>.+)@(?P<url>https?://\S+)$")
ENDPOINTS = ("chat", "completions")
# OpenAI rejects more than 4 stop sequences; the rest are applied client-side
_MAX_SERVER_STOPS = 4
# the HTTP client's pieces live in tunecheck.models.http; their former names stay importable
_Failure = _transport.Failure
_Reply = _transport.Reply
_Connections = _transport.Connections
_server_message = _transport.server_message
_retry_after = _retry.retry_after
_RETRY_AFTER_CAP = _retry.RETRY_AFTER_CAP
#: ``Generation.meta`` flag: the API key appeared in this answer and was replaced by ``***``
SCRUBBED = "api_key_scrubbed"
_OPTIONS = (
    "api_key_env",
    "endpoint",
    "concurrency",
    "timeout",
    "max_retries",
    "backoff_base",
    "backoff_max",
    "extra_body",
    "headers",
    "base_url",
    "hang_after",
)


def _truncate_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def _positive(name: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise BackendError(
            f"option {name}={value!r} is not a number", where=f"options.{name}"
        ) from None
    if out < minimum:
        raise BackendError(
            f"option {name} must be >= {minimum}, got {value!r}", where=f"options.{name}"
        )
    return out


@backend("openai")
class OpenAIModel(Model):
    """A model behind an OpenAI-compatible HTTP API.

    Args:
        model: the model name sent in every request.
        base_url: the API root, usually ending in ``/v1``.
        api_key_env: NAME of the environment variable holding the key (no key is sent if None).
        endpoint: ``"chat"`` or ``"completions"``; by default chat for message prompts
            and completions for raw-text prompts.
        concurrency: most requests in flight (the adaptive limit never exceeds it).
        timeout: seconds for one HTTP request, from sending to the last byte.
        max_retries: retries after the first attempt for 429, 5xx, timeouts, dropped connections.
        backoff_base, backoff_max: the backoff before retry ``k`` is uniform in
            ``[0, min(backoff_max, backoff_base * 2**k)]`` (full jitter) unless the server says when.
        extra_body: merged into every request body (e.g. ``{"top_k": 1}``).
        headers: extra HTTP headers.
        hang_after: stop with :class:`BackendError` when this many HTTP requests in a
            row time out before the server has answered anything at all (a server that
            accepts connections but never replies); 0 disables the check.

    ``generate`` and ``loglikelihood`` are synchronous. Called inside a running event
    loop (Jupyter, an async app) they run on a worker thread with a loop of their own
    and block the caller until done; ``await model.agenerate(...)`` avoids the block.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str | None = None,
        endpoint: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        hang_after: int = 8,
    ) -> None:
        if not model:
            raise BackendError("no model name given", hint="write openai:MODEL@BASE_URL")
        base_url = str(base_url).rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise BackendError(
                f"base URL {base_url!r} is not an http(s) URL",
                hint="e.g. openai:my-model@http://127.0.0.1:8000/v1",
            )
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise BackendError(
                f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}",
                where="options.endpoint",
            )
        if api_key_env is not None:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(api_key_env)):
                # someone pasted the key itself: do not echo it back
                raise BackendError(
                    "api_key_env must be the NAME of an environment variable, not the key",
                    where="options.api_key_env",
                    hint="export MY_API_KEY=... and write api_key_env: MY_API_KEY",
                )
            if not os.environ.get(api_key_env):
                raise BackendError(
                    f"environment variable {api_key_env} is not set (it should hold the API key for {base_url})",
                    where="options.api_key_env",
                    hint=f"export {api_key_env}=... before running",
                )
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.endpoint = endpoint
        self.concurrency = _positive("concurrency", concurrency, int, 1)
        self.timeout = _positive("timeout", timeout, float, 0.001)
        self.max_retries = _positive("max_retries", max_retries, int, 0)
        self.backoff_base = _positive("backoff_base", backoff_base, float, 0.0)
        self.backoff_max = _positive("backoff_max", backoff_max, float, 0.0)
        self.hang_after = _positive("hang_after", hang_after, int, 0)
        self.extra_body = dict(extra_body or {})
        self.headers = dict(headers or {})
        self.stats = RequestStats(concurrency_min=self.concurrency)
        self.stats.concurrency_changes.append(self.concurrency)
        self._limit = self.concurrency  # the adaptive limit, carried from one call to the next
        self._fingerprint: str | None = None
        self._served: list[str] | None = None
        self._verified = False
        self._n_supported: bool | None = None
        self._ll_max_tokens = 0
        self._ll_checked = False
        # timeouts before the server's first answer: a server that accepts and never replies
        self._hang = HangWatch(self.hang_after)

    @classmethod
    def from_ref(cls, target: str, **options: Any) -> OpenAIModel:
        """Build from ``MODEL@BASE_URL`` (or ``MODEL`` with a ``base_url`` option)."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise BackendError(
                f"unknown option(s) for the openai backend: {', '.join(unknown)}",
                where="options",
                hint=f"known: {', '.join(_OPTIONS)}",
            )
        base_url = options.pop("base_url", None)
        m = _REF.match(target)
        if m:
            model, base_url = m["model"], m["url"]
        else:
            model = target
        if not base_url:
            raise BackendError(
                f"model reference openai:{target} names no server",
                hint="write openai:MODEL@http://HOST:PORT/v1",
            )
        return cls(model, base_url, **options)

    @classmethod
    def validate_ref(cls, target: str, **options: Any) -> None:
        """Check a reference and its options (pre-flight). Builds no client, sends nothing."""
        cls.from_ref(target, **dict(options))

    def __repr__(self) -> str:
        return (
            f"OpenAIModel(model={self.model!r}, base_url={self.base_url!r}, "
            f"endpoint={self.endpoint!r}, api_key_env={self.api_key_env!r})"
        )

    # -- identity -----------------------------------------------------------------------

    def identity_options(self) -> dict[str, Any]:
        """The options in the fingerprint: every option but the reviewed safe ones.

        See :data:`tunecheck.models.identity.SAFE_OPTIONS`; credential headers are left
        out so a rotated key keeps the cache.
        """
        headers = {
            k.lower(): v for k, v in self.headers.items() if k.lower() not in CREDENTIAL_HEADERS
        }
        values = {name: getattr(self, name) for name in _OPTIONS if name != "base_url"}
        values["headers"] = headers
        return identity_settings("openai", values)

    @property
    def fingerprint(self) -> str:
        """sha256 of base URL, model name, the served model id (asked once from ``/models``)
        and every option that can change an answer (``endpoint``, ``extra_body``, ``headers``)."""
        if self._fingerprint is None:
            served = self._served_identity()
            self._fingerprint = stable_digest(
                {
                    "backend": "openai",
                    "base_url": self.base_url,
                    "model": self.model,
                    "served": served,
                    "options": self.identity_options(),
                }
            )
        return self._fingerprint

    def _lookup_served(self) -> None:
        with contextlib.suppress(BackendError):
            _ = self.fingerprint

    def _served_identity(self) -> str:
        import time

        import httpx

        url = f"{self.base_url}/models"
        for attempt in range(3):
            try:
                resp = httpx.get(url, headers=self._headers(), timeout=min(self.timeout, 30.0))
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}"
                if isinstance(err, httpx.ConnectError):
                    raise BackendError(
                        f"no OpenAI-compatible server answers at {self.base_url} ({problem})",
                        hint="start the server or fix the base URL in the model reference",
                    ) from None
            else:
                if resp.status_code not in (408, 429) and resp.status_code < 500:
                    break
                problem = f"HTTP {resp.status_code}"
                wait = _retry_after(resp.headers)
                if wait is not None:
                    # the server said when: waiting less only earns another refusal
                    time.sleep(wait)
                    continue
            time.sleep(self.retry_policy.backoff(attempt + 1))
        else:
            # a passing failure must not change the cache identity: refuse rather than guess
            raise BackendError(
                f"could not read the served model from {url} ({self._scrub(problem)})",
                hint="the model's identity keys the cache; retry when the server is healthy",
            )
        if resp.status_code in (401, 403):
            raise self._auth_error(resp.status_code, self._scrub(_server_message(resp)))
        if resp.status_code != 200:
            return self.model  # servers without /models: the name is all we know
        try:
            entries = [e for e in resp.json().get("data", []) if isinstance(e, dict) and "id" in e]
        except (ValueError, AttributeError):
            return self.model
        self._served = [str(e["id"]) for e in entries]
        match = [e for e in entries if e["id"] == self.model]
        if not match and len(entries) == 1:
            match = entries  # single-model servers (llama.cpp) answer whatever name is sent
        if not match:
            return self.model
        # vLLM's `root` names the weights behind a served alias
        return json.dumps([str(match[0]["id"]), str(match[0].get("root") or "")])

    # -- plumbing -------------------------------------------------------------------------

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.headers}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _scrub(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and key in text else text

    def _auth_error(self, status: int, detail: str) -> BackendError:
        if self.api_key_env:
            hint = f"check the key in the environment variable {self.api_key_env}"
        else:
            hint = "this server needs a key: set option api_key_env to the NAME of the variable holding it"
        return BackendError(
            f"{self.base_url} refused the request for model {self.model!r} "
            f"(HTTP {status}: {detail})",
            hint=hint,
        )

    def _client(self) -> _Connections:
        return _Connections(self.base_url, self._headers(), self.timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retries and timeout every request is sent with (from the options)."""
        return RetryPolicy(
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            timeout=self.timeout,
        )

    def _run_sync(self, factory: Callable[[], Awaitable[T]]) -> T:
        return run_sync(factory, thread_name="tunecheck-openai")

    async def _post(
        self,
        client: _Connections,
        limiter: AdaptiveConcurrency,
        path: str,
        body: dict[str, Any],
        parse: Callable[[dict[str, Any]], T] | None = None,
    ) -> Any:
        """POST ``body`` as JSON with this model's retries (:func:`post_with_retries`)."""
        return await post_with_retries(
            client,
            limiter,
            path,
            json.dumps(body, ensure_ascii=False).encode("utf-8"),
            policy=self.retry_policy,
            stats=self.stats,
            hang=self._hang,
            on_hang=self._hang_error,
            parse=parse,
        )

    def _hang_error(self) -> BackendError:
        return BackendError(
            f"the server at {self.base_url} accepts connections but answers nothing within "
            f"{self.timeout:g} s ({self._hang.silent_timeouts} requests timed out, none was answered)",
            hint="check that the server has loaded the model and is not stuck; raise option "
            "`timeout` if it is only slow, or set option `hang_after: 0` to keep waiting",
        )

    async def _map(
        self,
        items: Sequence[Any],
        one: Callable[[Any, AdaptiveConcurrency, Any], Awaitable[T]],
        on_failure: Callable[[Any, _Failure, bool], T],
        progress: Progress | None,
        solo_first: bool,
        on_result: Callable[[int, T], None] | None = None,
    ) -> list[T]:
        """Run ``one(item)`` for every item concurrently, results in input order.

        With ``solo_first`` the first item goes alone, so a wrong key, model, URL or a
        server without a needed feature fails once, clearly, instead of N times.
        ``on_result(i, result)`` is called as each item finishes, before the next
        answer is awaited (the cache commits it there).
        """
        results: list[Any] = [None] * len(items)
        if not items:
            return results
        limiter = AdaptiveConcurrency(self.concurrency, start=self._limit)
        async with self._client() as client:

            async def run(i: int, first: bool) -> None:
                try:
                    results[i] = await one(items[i], limiter, client)
                except _Failure as failure:
                    failure.message = self._scrub(failure.message)
                    if first and failure.status == 404 and self._served is None:
                        # list the served models in the error (off the loop: httpx sync call)
                        await asyncio.to_thread(self._lookup_served)
                    results[i] = on_failure(items[i], failure, first)
                if on_result is not None:
                    on_result(i, results[i])
                if progress is not None:
                    progress(1)

            tasks: list[asyncio.Task[None]] = []
            try:
                start = 0
                if solo_first:
                    await run(0, not self._verified)
                    self._verified = True
                    start = 1
                tasks = [asyncio.create_task(run(i, False)) for i in range(start, len(items))]
                await asyncio.gather(*tasks)
            except BaseException:
                # a BackendError (or Ctrl-C) ends the whole call: stop what is still in flight
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            finally:
                self._limit = limiter.limit
                self.stats.absorb(limiter)
        return results

    def _check_fatal(self, failure: _Failure, path: str) -> None:
        """On the first request: a refused key, unknown model or wrong URL raises."""
        if failure.status in (401, 403):
            detail = failure.message.removeprefix(f"HTTP {failure.status}: ")
            raise self._auth_error(failure.status, detail)
        if failure.status == 404:
            served = f"; served models: {', '.join(self._served)}" if self._served else ""
            if "model" in failure.message.lower() or (
                self._served and self.model not in self._served
            ):
                raise BackendError(
                    f"model {self.model!r} not found at {self.base_url} ({failure.message}){served}",
                    hint="use a model name the server lists under /models",
                )
            raise BackendError(
                f"{self.base_url}/{path} does not exist ({failure.message})",
                hint="OpenAI-compatible base URLs usually end in /v1",
            )
        if failure.connect:
            raise BackendError(
                f"no OpenAI-compatible server answers at {self.base_url} ({failure.message})",
                hint="start the server or fix the base URL in the model reference",
            )

    def _count(self, ok: bool) -> None:
        self.stats.requests += 1
        if ok:
            self.stats.ok += 1
        else:
            self.stats.errors += 1

    # -- generation ----------------------------------------------------------------------

    def _route(self, prompt: Any) -> tuple[str, str, Any]:
        """(endpoint, path, prompt payload) for one prompt."""
        endpoint = self.endpoint or ("completions" if isinstance(prompt, str) else "chat")
        if endpoint == "chat":
            messages = (
                [{"role": "user", "content": prompt}]
                if isinstance(prompt, str)
                else [dict(m) for m in prompt]
            )
            return endpoint, "chat/completions", messages
        if not isinstance(prompt, str):
            raise BackendError(
                "endpoint 'completions' cannot send chat messages",
                where="options.endpoint",
                hint="use endpoint: chat, or render the prompt as plain text (prompt chat: false)",
            )
        return endpoint, "completions", prompt

    def _body(self, endpoint: str, payload: Any, req: GenerationRequest, n: int, seed: int) -> dict:
        p = req.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages" if endpoint == "chat" else "prompt": payload,
            "max_tokens": p.max_new_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": seed,
        }
        if n > 1:
            body["n"] = n
        if p.stop:
            body["stop"] = list(p.stop[:_MAX_SERVER_STOPS])
        body.update(self.extra_body)
        return body

    @staticmethod
    def _texts(endpoint: str, data: dict[str, Any]) -> list[str]:
        """The answer texts, in choice order; :class:`_Failure` for any other shape.

        ``content: null`` (or a missing text) is a failure too: scoring it as an empty
        answer would count a server fault against the model.
        """
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            err = data.get("error")
            detail = f": {err.get('message', err) if isinstance(err, dict) else err}" if err else ""
            raise _Failure(f"the server answered without choices{detail}"[:400])
        if not all(isinstance(c, dict) for c in choices):
            kinds = sorted({type(c).__name__ for c in choices if not isinstance(c, dict)})
            raise _Failure(f"malformed answer: choices hold {', '.join(kinds)}, not objects")

        def order(c: dict[str, Any]) -> int:
            index = c.get("index")
            return index if isinstance(index, int) and not isinstance(index, bool) else 0

        out = []
        for c in sorted(choices, key=order):
            if endpoint == "chat":
                message = c.get("message")
                if not isinstance(message, dict):
                    raise _Failure("malformed answer: a choice has no message object")
                text = message.get("content")
                field_name = "message.content"
            else:
                text = c.get("text")
                field_name = "text"
            if text is None:
                raise _Failure(f"empty answer: the server sent {field_name}: null")
            if not isinstance(text, str):
                raise _Failure(f"malformed answer: {field_name} is a {type(text).__name__}")
            out.append(text)
        return out

    async def _generate_one(
        self, req: GenerationRequest, limiter: AdaptiveConcurrency, client: Any
    ) -> Generation:
        endpoint, path, payload = self._route(req.prompt)
        p = req.params
        want = max(1, p.n)
        texts: list[str] = []
        prompt_tokens: int | None = None
        completion_tokens: int | None = None

        def account(data: dict[str, Any]) -> None:
            nonlocal prompt_tokens, completion_tokens
            usage = data.get("usage")
            if isinstance(usage, dict):
                if prompt_tokens is None and isinstance(usage.get("prompt_tokens"), int):
                    prompt_tokens = usage["prompt_tokens"]
                if isinstance(usage.get("completion_tokens"), int):
                    completion_tokens = (completion_tokens or 0) + usage["completion_tokens"]

        def parse(data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
            return self._texts(endpoint, data), data

        if want == 1 or self._n_supported is not False:
            got, data = await self._post(
                client, limiter, path, self._body(endpoint, payload, req, want, p.seed), parse
            )
            texts = got[:want]
            account(data)
            if want > 1:
                self._n_supported = len(texts) >= want
        if len(texts) < want:
            # the server ignored `n`: ask for the missing samples one by one, each with its own seed
            extra = await asyncio.gather(
                *(
                    self._post(
                        client,
                        limiter,
                        path,
                        self._body(endpoint, payload, req, 1, p.seed + i),
                        parse,
                    )
                    for i in range(len(texts), want)
                ),
                return_exceptions=True,
            )
            for answer in extra:
                if isinstance(answer, BaseException):
                    raise answer
                got, data = answer
                texts.append(got[0])
                account(data)
        if p.stop:
            texts = [_truncate_at_stop(t, p.stop) for t in texts]
        meta: dict[str, Any] = {}
        scrubbed = [self._scrub(t) for t in texts]
        if scrubbed != texts:
            # a server that quotes the key in an answer: the key never reaches the store
            texts = scrubbed
            self.stats.scrubbed += 1
            meta[SCRUBBED] = True
        self._count(True)
        return Generation(
            texts=texts,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            meta=meta,
        )

    async def agenerate(
        self,
        requests: Sequence[GenerationRequest],
        progress: Progress | None = None,
        on_answer: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        """Async :meth:`generate` (and :meth:`generate_each` with ``on_answer``)."""
        for req in requests:
            self._route(req.prompt)  # a misconfigured endpoint fails before anything is sent

        def failed(req: GenerationRequest, failure: _Failure, first: bool) -> Generation:
            if first:
                self._check_fatal(failure, self._route(req.prompt)[1])
            self._count(False)
            return Generation(texts=[], error=failure.message)

        return await self._map(
            list(requests),
            self._generate_one,
            failed,
            progress,
            solo_first=not self._verified,
            on_result=on_answer,
        )

    #: :meth:`generate_each` and :meth:`loglikelihood_each` report every answer the moment
    #: it arrives
    streams_answers = True

    def generate_each(
        self,
        requests: Sequence[GenerationRequest],
        on_answer: Callable[[int, Generation], None],
        progress: Progress | None = None,
    ) -> list[Generation]:
        """:meth:`generate`, calling ``on_answer(i, generation)`` as each request finishes.

        The cache stores each answer there, so a run killed at any moment loses only
        the requests in flight.
        """
        return self._run_sync(lambda: self.agenerate(requests, progress, on_answer=on_answer))

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        """Answer every request, in order; ``progress(1)`` is called as each one finishes.

        Requests that fail after all retries (or at once, for 4xx other than 429)
        come back with ``error`` set. Raises :class:`BackendError` only when the very
        first request shows the setup is wrong: key refused (401/403), model or URL
        unknown (404), or no server at the base URL.
        """
        return self._run_sync(lambda: self.agenerate(requests, progress))

    # -- log-likelihood ------------------------------------------------------------------

    def _no_logprobs(self, purpose: str | None, detail: str) -> BackendError:
        self.supports_loglikelihood = False
        needs = purpose or "log-likelihood scoring"
        return BackendError(
            f"the server at {self.base_url} (model {self.model!r}) returns no prompt "
            f"log-probabilities ({detail}), which {needs} needs",
            hint="score it by generated answer instead (probe option `mode: generate`), "
            "or serve the model with a server that echoes prompt logprobs (e.g. vLLM)",
        )

    def _score(
        self, req: LoglikelihoodRequest, data: dict[str, Any], prompt: str, purpose: str | None
    ) -> LoglikelihoodResult:
        choices = data.get("choices") or [{}]
        if not isinstance(choices, list):
            raise _Failure(f"malformed answer: choices is a {type(choices).__name__}")
        choice = choices[0] if isinstance(choices[0], dict) else {}
        lp = choice.get("logprobs")
        if not isinstance(lp, dict) or not lp.get("token_logprobs"):
            raise self._no_logprobs(purpose, "the completions answer has no logprobs")
        text = choice.get("text")
        if isinstance(text, str) and not text.startswith(prompt):
            raise self._no_logprobs(purpose, "the server ignores echo")
        tokens = lp.get("tokens") or []
        values = lp["token_logprobs"]
        offsets = lp.get("text_offset")
        if not offsets:
            offsets, pos = [], 0
            for tok in tokens:
                offsets.append(pos)
                pos += len(tok)
        top = lp.get("top_logprobs") or [None] * len(values)
        ctx_end, end = len(req.context), len(prompt)
        # tokens starting at or after the end of the prompt were generated (max_tokens=1 fallback)
        last = next((i for i, o in enumerate(offsets) if o >= end), len(offsets))
        # the continuation starts with the token holding its first character; a token
        # straddling the boundary counts as continuation
        first = max((i for i, o in enumerate(offsets[:last]) if o <= ctx_end), default=0)
        if not req.continuation:
            first = last
        total, greedy = 0.0, True
        for i in range(first, last):
            value = values[i]
            if value is None:
                raise _Failure("no log-probability for the first token (is the context empty?)")
            total += float(value)
            options = top[i] if i < len(top) else None
            if isinstance(options, dict) and options:
                greedy = greedy and float(value) >= max(float(v) for v in options.values()) - 1e-6
            else:
                greedy = False
        return LoglikelihoodResult(logprob=total, is_greedy=greedy, n_tokens=last - first)

    async def _loglikelihood_one(
        self,
        req: LoglikelihoodRequest,
        limiter: AdaptiveConcurrency,
        client: Any,
        purpose: str | None,
    ) -> LoglikelihoodResult:
        prompt = req.context + req.continuation
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "echo": True,
            "logprobs": 1,
            "temperature": 0.0,
            **self.extra_body,
        }
        while True:
            body["max_tokens"] = self._ll_max_tokens
            try:
                result = await self._post(
                    client,
                    limiter,
                    "completions",
                    body,
                    lambda data: self._score(req, data, prompt, purpose),
                )
            except _Failure as failure:
                if failure.status == 400 and not self._ll_checked:
                    if self._ll_max_tokens == 0:
                        self._ll_max_tokens = 1  # OpenAI-style servers want at least one token
                        continue
                    raise self._no_logprobs(
                        purpose, f"echo with logprobs refused: {self._scrub(failure.message)}"
                    ) from None
                raise
            self._ll_checked = True
            self.supports_loglikelihood = True
            self._count(True)
            return result

    async def aloglikelihood(
        self,
        requests: Sequence[LoglikelihoodRequest],
        progress: Progress | None = None,
        purpose: str | None = None,
        on_answer: Callable[[int, LoglikelihoodResult], None] | None = None,
    ) -> list[LoglikelihoodResult]:
        """Async :meth:`loglikelihood` (and :meth:`loglikelihood_each` with ``on_answer``)."""
        if self.supports_loglikelihood is False and self._ll_checked is False and requests:
            raise self._no_logprobs(purpose, "found on an earlier request")

        def failed(
            req: LoglikelihoodRequest, failure: _Failure, first: bool
        ) -> LoglikelihoodResult:
            if first:
                self._check_fatal(failure, "completions")
            self._count(False)
            return LoglikelihoodResult(logprob=math.nan, error=failure.message)

        async def one(
            req: LoglikelihoodRequest, limiter: AdaptiveConcurrency, client: Any
        ) -> LoglikelihoodResult:
            return await self._loglikelihood_one(req, limiter, client, purpose)

        solo = not self._verified or not self._ll_checked
        return await self._map(
            list(requests), one, failed, progress, solo_first=solo, on_result=on_answer
        )

    def loglikelihood_each(
        self,
        requests: Sequence[LoglikelihoodRequest],
        on_answer: Callable[[int, LoglikelihoodResult], None],
        progress: Progress | None = None,
        purpose: str | None = None,
    ) -> list[LoglikelihoodResult]:
        """:meth:`loglikelihood`, calling ``on_answer(i, result)`` as each request finishes
        (the cache stores each score there, like :meth:`generate_each`)."""
        return self._run_sync(
            lambda: self.aloglikelihood(requests, progress, purpose, on_answer=on_answer)
        )

    def loglikelihood(
        self,
        requests: Sequence[LoglikelihoodRequest],
        progress: Progress | None = None,
        purpose: str | None = None,
    ) -> list[LoglikelihoodResult]:
        """log P(continuation | context) from the completions endpoint's prompt logprobs.

        Sends ``echo=True, logprobs=1, max_tokens=0`` (vLLM style; falls back to
        ``max_tokens=1`` when the server insists, ignoring the generated token).
        A server that returns no prompt log-probabilities raises :class:`BackendError`
        naming ``purpose`` (e.g. the probe that needs them) and sets
        ``supports_loglikelihood`` to False. Failed requests come back with ``error``
        set and ``logprob`` NaN.
        """
        return self._run_sync(lambda: self.aloglikelihood(requests, progress, purpose))
