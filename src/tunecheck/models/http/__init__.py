"""The HTTP client under the ``openai`` backend, one job per module.

- :mod:`.limiter`: :class:`AdaptiveConcurrency` (AIMD limit on requests in flight) and
  the :class:`RequestStats` counters;
- :mod:`.transport`: keep-alive connections to one server (:class:`Connections`), the
  :class:`Reply` of one request, the :class:`Failure` of one that did not succeed and the
  server's own error message;
- :mod:`.retry`: ``Retry-After`` parsing, the :class:`RetryPolicy` (attempts, full-jitter
  backoff), the :class:`HangWatch` that notices a server answering nothing, and
  :func:`post_with_retries`, the loop that sends one request until it succeeds or the
  policy gives up;
- :mod:`.sync`: :func:`run_sync`, a coroutine run to completion from synchronous code.

Nothing here knows the OpenAI payloads; :mod:`tunecheck.models.openai_compat` builds the
bodies, parses the answers and maps failures to :class:`~tunecheck.errors.BackendError`.
Modules import httpcore inside the functions that need it, like every backend.
"""
