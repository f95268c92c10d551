"""A transparent cache in front of any backend: ask the model only for what the store lacks.

Every answer is keyed by ``(model fingerprint, request cache key)`` and written to the
run store as soon as it exists: one commit per answer for backends that report answers
as they arrive (``streams_answers``, the HTTP backend), one per batch for local models.
A run killed at any moment resumes with only the requests that were in flight. Sampled generations are stored one sample at a time: sample
``i`` of a request with seed ``s`` is stored under the key of the same request with
``n=1, seed=s+i`` (the ``hf`` backend guarantees that both are the same draw), so asking
for 5 samples after 3 were cached generates only the 2 missing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

from tunecheck.models.base import (
    Generation,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    Progress,
)

DEFAULT_CHUNK = 64


class CacheStore(Protocol):
    """The part of :class:`tunecheck.store.Store` the cache uses."""

    def get_generations(self, model_fp: str, keys: Sequence[str]) -> dict[str, Generation]: ...

    def put_generations(self, model_fp: str, items: Any) -> None: ...

    def get_loglikelihoods(
        self, model_fp: str, keys: Sequence[str]
    ) -> dict[str, LoglikelihoodResult]: ...

    def put_loglikelihoods(self, model_fp: str, items: Any) -> None: ...


class StreamingModel(Protocol):
    """A backend with ``streams_answers = True`` also offers ``generate_each`` and
    ``loglikelihood_each``."""

    def generate_each(
        self,
        requests: Sequence[GenerationRequest],
        on_answer: Callable[[int, Generation], None],
    ) -> list[Generation]: ...

    def loglikelihood_each(
        self,
        requests: Sequence[LoglikelihoodRequest],
        on_answer: Callable[[int, LoglikelihoodResult], None],
    ) -> list[LoglikelihoodResult]: ...


def _request_dict(req: GenerationRequest) -> dict[str, Any]:
    prompt = req.prompt if isinstance(req.prompt, str) else [dict(m) for m in req.prompt]
    return {"prompt": prompt, "params": req.params.to_dict()}


def _flags(gen: Generation) -> dict[str, Any]:
    """A generation's meta without its per-sample token counts (kept with every sample)."""
    return {k: v for k, v in (gen.meta or {}).items() if k != "sample_completion_tokens"}


def sample_request(req: GenerationRequest, index: int) -> GenerationRequest:
    """The single-sample request whose answer is sample ``index`` of ``req``."""
    return replace(req, params=replace(req.params, n=1, seed=req.params.seed + index))


def _sampled(req: GenerationRequest) -> bool:
    return req.params.temperature > 0 and req.params.n > 1


@dataclass
class _Job:
    """Samples ``start .. start+count-1`` of request ``index``, asked of the inner model."""

    index: int
    start: int
    request: GenerationRequest


class CachedModel(Model):
    """Wraps ``inner``; answers from ``store`` when it can, calls ``inner`` only for misses.

    ``calls`` counts the requests actually sent to ``inner`` (a fully cached re-run: 0).
    Failed generations are returned but never stored as answers.
    """

    def __init__(self, inner: Model, store: CacheStore, *, chunk_size: int | None = None) -> None:
        self.inner = inner
        self.store = store
        self.chunk_size = chunk_size
        self.calls = 0
        self.backend_name = inner.backend_name
        self.supports_loglikelihood = inner.supports_loglikelihood

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, attr: str) -> Any:
        # backend extras (render_prompt for the adapter guard's logit check...) pass through
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def _chunk(self) -> int:
        # one inner batch per chunk for local models: each finished batch is committed
        return max(
            1, int(self.chunk_size or getattr(self.inner, "cache_chunk_size", 0) or DEFAULT_CHUNK)
        )

    # ----------------------------------------------------------------- generate
    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        if not requests:
            return []
        fp = self.inner.fingerprint
        # the store keys of every request: one key, or one per sample
        keys: list[list[str]] = []
        for req in requests:
            if _sampled(req):
                keys.append([sample_request(req, i).cache_key() for i in range(req.params.n)])
            else:
                keys.append([req.cache_key()])
        hits = self.store.get_generations(fp, [k for ks in keys for k in ks])

        results: list[Generation | None] = [None] * len(requests)
        parts: dict[int, dict[int, tuple[str, int | None]]] = {}
        prompt_tokens: dict[int, int | None] = {}
        # backend flags of a sampled request's samples (e.g. the API key was scrubbed)
        flags: dict[int, dict[str, Any]] = {}
        jobs: list[_Job] = []
        for i, req in enumerate(requests):
            if not _sampled(req):
                hit = hits.get(keys[i][0])
                if hit is not None:
                    results[i] = hit
                else:
                    jobs.append(_Job(i, 0, req))
                continue
            parts[i] = {}
            for s, key in enumerate(keys[i]):
                hit = hits.get(key)
                if hit is not None and hit.texts:
                    parts[i][s] = (hit.texts[0], hit.completion_tokens)
                    prompt_tokens[i] = hit.prompt_tokens
                    flags.setdefault(i, {}).update(_flags(hit))
            jobs.extend(self._sample_jobs(i, req, parts[i]))
            if not jobs or jobs[-1].index != i:
                results[i] = self._assemble(
                    req, parts[i], prompt_tokens.get(i), cached=True, flags=flags.get(i)
                )
        if progress:
            done = sum(r is not None for r in results)
            if done:
                progress(done)

        # longest prompts first, so the first batch shows memory trouble early
        jobs.sort(key=lambda j: -len(str(j.request.prompt)))
        waiting: dict[int, int] = {}
        for j in jobs:
            waiting[j.index] = waiting.get(j.index, 0) + 1

        def take(job: _Job, gen: Generation, to_store: list[Any]) -> int:
            """Record one job's answer; returns 1 when its request is now complete."""
            i, req = job.index, requests[job.index]
            if not _sampled(req):
                results[i] = gen
                if gen.ok:
                    to_store.append((keys[i][0], _request_dict(req), gen))
            else:
                to_store.extend(self._store_samples(job, gen, parts[i], prompt_tokens))
                flags.setdefault(i, {}).update(_flags(gen))
                if not gen.ok:
                    results[i] = gen
            waiting[i] -= 1
            if waiting[i]:
                return 0
            if results[i] is None:
                results[i] = self._assemble(
                    req, parts[i], prompt_tokens.get(i), cached=False, flags=flags.get(i)
                )
            return 1

        # only asked when something must be generated: a lazy backend stays unloaded on a re-run
        if jobs and getattr(self.inner, "streams_answers", False):
            # every job in one call (the backend bounds what is in flight); each answer is
            # committed as it arrives, before the next one is awaited
            def on_answer(k: int, gen: Generation) -> None:
                to_store: list[Any] = []
                finished = take(jobs[k], gen, to_store)
                if to_store:
                    self.store.put_generations(fp, to_store)
                if progress and finished:
                    progress(finished)

            self.calls += len(jobs)
            streaming = cast(StreamingModel, self.inner)  # what streams_answers promises
            streaming.generate_each([j.request for j in jobs], on_answer)
            return [r for r in results if r is not None]

        size = self._chunk() if jobs else 1
        for start in range(0, len(jobs), size):
            chunk = jobs[start : start + size]
            self.calls += len(chunk)
            answers = self.inner.generate([j.request for j in chunk])
            to_store: list[tuple[str, dict[str, Any], Generation]] = []
            finished = sum(
                take(job, gen, to_store) for job, gen in zip(chunk, answers, strict=True)
            )
            if to_store:
                self.store.put_generations(fp, to_store)
            if progress and finished:
                progress(finished)
        return [r for r in results if r is not None]

    @staticmethod
    def _sample_jobs(i: int, req: GenerationRequest, have: dict[int, Any]) -> list[_Job]:
        """One job per run of consecutive missing samples (sample j of seed s+a = sample a+j of s)."""
        jobs: list[_Job] = []
        s = 0
        n = req.params.n
        while s < n:
            if s in have:
                s += 1
                continue
            end = s
            while end < n and end not in have:
                end += 1
            params = replace(req.params, n=end - s, seed=req.params.seed + s)
            jobs.append(_Job(i, s, replace(req, params=params)))
            s = end
        return jobs

    @staticmethod
    def _store_samples(
        job: _Job,
        gen: Generation,
        have: dict[int, tuple[str, int | None]],
        prompt_tokens: dict[int, int | None],
    ) -> list[tuple[str, dict[str, Any], Generation]]:
        if not gen.ok:
            return []
        per_sample = gen.meta.get("sample_completion_tokens") if gen.meta else None
        extra = _flags(gen)
        out = []
        for j, text in enumerate(gen.texts):
            tokens = per_sample[j] if per_sample and j < len(per_sample) else None
            if tokens is None and len(gen.texts) == 1:
                tokens = gen.completion_tokens
            s = job.start + j
            have[s] = (text, tokens)
            single = sample_request(job.request, j)
            out.append(
                (
                    single.cache_key(),
                    _request_dict(single),
                    Generation(
                        texts=[text],
                        prompt_tokens=gen.prompt_tokens,
                        completion_tokens=tokens,
                        meta=dict(extra),
                    ),
                )
            )
        prompt_tokens[job.index] = gen.prompt_tokens
        return out

    @staticmethod
    def _assemble(
        req: GenerationRequest,
        have: dict[int, tuple[str, int | None]],
        prompt_tokens: int | None,
        *,
        cached: bool,
        flags: dict[str, Any] | None = None,
    ) -> Generation:
        samples = [have[s] for s in range(req.params.n)]
        counts = [c for _, c in samples]
        known = all(c is not None for c in counts)
        return Generation(
            texts=[t for t, _ in samples],
            prompt_tokens=prompt_tokens,
            completion_tokens=sum(c for c in counts if c is not None) if known else None,
            cached=cached,
            meta={**(flags or {}), **({"sample_completion_tokens": counts} if known else {})},
        )

    # ----------------------------------------------------------------- loglikelihood
    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]:
        if not requests:
            return []
        fp = self.inner.fingerprint
        keys = [r.cache_key() for r in requests]
        hits = self.store.get_loglikelihoods(fp, keys)
        results: list[LoglikelihoodResult | None] = [hits.get(k) for k in keys]
        if progress and len(hits):
            progress(sum(r is not None for r in results))
        # keep the continuations of one context together so the backend encodes it once
        by_context: dict[str, list[int]] = {}
        for i, r in enumerate(results):
            if r is None:
                by_context.setdefault(requests[i].context, []).append(i)
        groups = sorted(by_context.values(), key=lambda g: -len(requests[g[0]].context))

        if groups and getattr(self.inner, "streams_answers", False):
            # HTTP backends: one call, each score committed as it arrives (like generate)
            todo = [i for group in groups for i in group]

            def on_answer(k: int, res: LoglikelihoodResult) -> None:
                i = todo[k]
                results[i] = res
                if res.error is None:
                    req = requests[i]
                    request = {"context": req.context, "continuation": req.continuation}
                    self.store.put_loglikelihoods(fp, [(keys[i], request, res)])
                if progress:
                    progress(1)

            self.calls += len(todo)
            streaming = cast(StreamingModel, self.inner)
            streaming.loglikelihood_each([requests[i] for i in todo], on_answer)
            return [r for r in results if r is not None]
        size = self._chunk()  # contexts per inner call (one forward batch for local models)
        for g_start in range(0, len(groups), size):
            chunk = [i for group in groups[g_start : g_start + size] for i in group]
            self.calls += len(chunk)
            answers = self.inner.loglikelihood([requests[i] for i in chunk])
            items = []
            for i, res in zip(chunk, answers, strict=True):
                results[i] = res
                if res.error is None:
                    req = requests[i]
                    items.append(
                        (keys[i], {"context": req.context, "continuation": req.continuation}, res)
                    )
            if items:
                self.store.put_loglikelihoods(fp, items)
            if progress:
                progress(len(chunk))
        return [r for r in results if r is not None]
