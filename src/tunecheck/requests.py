"""The one place an example becomes a generation request.

The runner (tasks and generated probes), the training callback and checkpoint ranking all build
their requests here: the validation metric measured during training and the test metric measured
by ``tunecheck run`` are the same measurement, with the same prompt rendering and the same
generation parameters (overrides are explicit and named). Prompts that arrive already rendered
by someone else (lm-evaluation-harness contexts, judge templates) are sent as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tunecheck.examples import Example
from tunecheck.models.base import GenerationParams, GenerationRequest
from tunecheck.prompts import Prompt


class GenerationSettings(Protocol):
    """What a contender's generation block provides (``spec.GenerationSpec`` has these)."""

    @property
    def max_new_tokens(self) -> int: ...
    @property
    def temperature(self) -> float: ...
    @property
    def top_p(self) -> float: ...
    @property
    def n(self) -> int: ...
    @property
    def stop(self) -> Sequence[str]: ...


class _PromptSource(Protocol):
    def build(self) -> Prompt: ...


class ContenderLike(Protocol):
    """A contender: its prompt (``build()`` gives a :class:`Prompt`) and its generation block."""

    @property
    def prompt(self) -> _PromptSource: ...

    @property
    def generation(self) -> GenerationSettings: ...


def generation_params(
    settings: GenerationSettings,
    seed: int,
    *,
    n: int | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
) -> GenerationParams:
    """A contender's generation parameters; ``n``, ``max_new_tokens`` and ``temperature`` override
    the contender's own (checkpoint ranking asks for one sample, the callback may shorten
    answers)."""
    return GenerationParams(
        max_new_tokens=settings.max_new_tokens if max_new_tokens is None else max_new_tokens,
        temperature=settings.temperature if temperature is None else temperature,
        top_p=settings.top_p,
        n=settings.n if n is None else n,
        stop=tuple(settings.stop),
        seed=seed,
    )


def render_requests(
    prompt: Prompt, examples: Sequence[Example], params: GenerationParams
) -> list[GenerationRequest]:
    """One request per example: the example rendered with ``prompt``, identified by its id."""
    return [GenerationRequest(prompt=prompt.render(e), params=params, id=e.id) for e in examples]


def contender_requests(
    contender: ContenderLike,
    examples: Sequence[Example],
    seed: int,
    *,
    n: int | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
) -> list[GenerationRequest]:
    """Every example rendered with the contender's prompt and generation parameters."""
    params = generation_params(
        contender.generation, seed, n=n, max_new_tokens=max_new_tokens, temperature=temperature
    )
    return render_requests(contender.prompt.build(), examples, params)
