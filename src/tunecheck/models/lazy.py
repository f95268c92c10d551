"""Defer loading a model's weights until a request actually misses the cache.

A re-run of a finished spec is answered entirely from the store; loading a
multi-GB model just to learn its fingerprint would dominate that re-run. Backends
that can compute their fingerprint without loading (``fingerprint_for``) are
wrapped in :class:`LazyModel` by the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tunecheck.models.base import (
    Generation,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    Progress,
)


class LazyModel(Model):
    """A :class:`Model` whose ``factory`` runs on the first call that needs the weights."""

    def __init__(
        self,
        factory: Callable[[], Model],
        fingerprint: str,
        *,
        backend_name: str,
        supports_loglikelihood: bool = True,
        name: str = "",
    ) -> None:
        self._factory = factory
        self._fingerprint = fingerprint
        self._model: Model | None = None
        self.backend_name = backend_name
        self.supports_loglikelihood = supports_loglikelihood
        self.name = name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self) -> Model:
        """The real backend, loading it now if needed."""
        if self._model is None:
            self._model = self._factory()
        return self._model

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        return self.model().generate(requests, progress)

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]:
        return self.model().loglikelihood(requests, progress)

    def close(self) -> None:
        if self._model is not None:
            self._model.close()

    def __getattr__(self, attr: str) -> Any:
        # backend extras (render_prompt, cache_chunk_size...) come from the loaded model
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.model(), attr)
