"""The model interface: two calls, ``generate`` and ``loglikelihood``.

Every backend (local transformers, any OpenAI-compatible server, a
sequence classifier...) implements :class:`Model`. Requests and results are plain
frozen dataclasses so they can be hashed into cache keys and stored.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tunecheck.errors import BackendError
from tunecheck.registry import Registry

ChatMessage = dict[str, str]
Prompt = str | tuple[ChatMessage, ...]
"""A rendered prompt: raw text (completion style) or chat messages."""

Progress = Callable[[int], None]
"""Called with the number of requests just finished (for progress bars)."""


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. Greedy by default; ``n`` > 1 needs ``temperature`` > 0."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to complete. ``id`` ties it back to an example (not part of the cache key)."""

    prompt: Prompt
    params: GenerationParams = field(default_factory=GenerationParams)
    id: str = ""

    def cache_key(self) -> str:
        """Hash of the rendered prompt and the generation parameters."""
        prompt = self.prompt if isinstance(self.prompt, str) else [dict(m) for m in self.prompt]
        payload = json.dumps(
            {"prompt": prompt, "params": self.params.to_dict()}, sort_keys=True, ensure_ascii=False
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class Generation:
    """The answer to a :class:`GenerationRequest`: ``n`` texts, or an error.

    A request that failed after all retries carries ``error`` and no texts; it is
    counted and reported separately and never scored as a wrong answer.
    """

    texts: list[str]
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool = False
    #: backend extras kept with the answer (e.g. class probabilities of a classifier)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context). Multiple-choice items share one ``context``."""

    context: str
    continuation: str
    id: str = ""

    def cache_key(self) -> str:
        payload = json.dumps([self.context, self.continuation], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class LoglikelihoodResult:
    """Sum of token log-probabilities of the continuation, and whether greedy decoding yields it."""

    logprob: float
    is_greedy: bool = False
    n_tokens: int = 0
    error: str | None = None


class Model(ABC):
    """A backend. Subclasses register with ``@backend("name")``."""

    #: the registry name, set by ``@backend``
    backend_name: str = ""
    supports_loglikelihood: bool = True

    @classmethod
    def from_ref(cls, target: str, **options: Any) -> Model:
        """Build the backend for ``BACKEND:TARGET``: by default ``cls(target, **options)``.

        ``options`` are the contender's ``options:`` from the spec. Override it when the
        constructor takes something else (the built-in backends parse adapters, URLs...).
        """
        # the ABC declares no constructor; each subclass defines its own
        build: Callable[..., Model] = cls
        try:
            return build(target, **options)
        except TypeError as err:
            raise BackendError(
                f"backend {cls.backend_name or cls.__name__!r} could not be built from "
                f"{target!r} with options {sorted(options)}: {err}",
                hint="give the class an __init__(self, target, **options) or a from_ref classmethod",
            ) from err

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Identity of the weights (or server + served model): part of every cache key."""

    @abstractmethod
    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        """Answer every request, in order. Failures are returned as ``Generation(error=...)``."""

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]:
        """Score continuations. Backends without log-probabilities raise :class:`BackendError`."""
        raise BackendError(
            f"the {self.backend_name or type(self).__name__} backend provides no log-probabilities",
            hint="score multiple-choice probes by generated letter instead (probe option `mode: generate`)",
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (GPU memory, HTTP sessions)."""


backends: Registry[type[Model]] = Registry("backend", "tunecheck.backends")


def backend(name: str) -> Callable[[type[Model]], type[Model]]:
    """Register a :class:`Model` subclass under ``name`` (the prefix of a model reference)."""

    def decorate(cls: type[Model]) -> type[Model]:
        cls.backend_name = name
        return backends.register(name)(cls)

    return decorate
