"""Prompts: render an :class:`~tunecheck.examples.Example` into a model request.

A prompt is a system message, few-shot examples (rendered as alternating
user/assistant turns) and a Jinja2 template for the user turn. The chat template
of the model itself is applied later, by the backend.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tunecheck.errors import SpecError
from tunecheck.examples import Example

DEFAULT_TEMPLATE = "{{ input }}"


@lru_cache(maxsize=64)
def _compile(template: str) -> Any:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as err:
        raise SpecError(
            f"prompt template does not parse: {err.message}", where=f"line {err.lineno}"
        ) from None


@dataclass(frozen=True)
class FewShot:
    """One demonstration: what the user says and what the assistant should answer."""

    input: str
    output: str


@dataclass(frozen=True)
class Prompt:
    """System prompt + few-shot demonstrations + user-turn template.

    ``chat=False`` renders everything into one plain-text completion prompt (for
    base models without a chat template).
    """

    system: str | None = None
    few_shot: tuple[FewShot, ...] = ()
    template: str = DEFAULT_TEMPLATE
    chat: bool = True

    def fingerprint(self) -> str:
        payload = {
            "system": self.system,
            "few_shot": [(f.input, f.output) for f in self.few_shot],
            "template": self.template,
            "chat": self.chat,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def user_text(self, example: Example) -> str:
        if not isinstance(example.input, str):
            raise SpecError(
                f"example {example.id!r} has chat-message input; templates need text input"
            )
        variables: dict[str, Any] = dict(example.meta)
        variables.update(input=example.input, id=example.id, label=example.label)
        import jinja2

        try:
            return _compile(self.template).render(**variables)
        except jinja2.UndefinedError as err:
            raise SpecError(
                f"prompt template uses an undefined variable: {err.message}",
                hint="templates see `input`, `id`, `label` and the example's extra fields",
            ) from None

    def render(self, example: Example) -> str | tuple[dict[str, str], ...]:
        """The request prompt for ``example``: chat messages, or one string when ``chat=False``."""
        if not isinstance(example.input, str):
            # already a conversation: only the system prompt and demonstrations are added
            messages = list(example.input)
            head = self._head_messages()
            return tuple(head + [dict(m) for m in messages])
        user = self.user_text(example)
        if not self.chat:
            parts = [self.system] if self.system else []
            for shot in self.few_shot:
                parts.append(f"{self._shot_user(shot)}\n{shot.output}")
            parts.append(user)
            return "\n\n".join(parts)
        return tuple([*self._head_messages(), {"role": "user", "content": user}])

    def _shot_user(self, shot: FewShot) -> str:
        return self.user_text(Example(id="few-shot", input=shot.input))

    def _head_messages(self) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        for shot in self.few_shot:
            messages.append({"role": "user", "content": self._shot_user(shot)})
            messages.append({"role": "assistant", "content": shot.output})
        return messages


@dataclass(frozen=True)
class PromptSet:
    """Named prompts, handy for declaring several baselines at once."""

    prompts: dict[str, Prompt] = field(default_factory=dict)
