"""Judge prompt templates (Jinja2): the defaults, placeholder checks, rendering.

A template is the judge's user message. Placeholders:

* pairwise: ``{{ input }}``, ``{{ output_a }}``, ``{{ output_b }}`` (required),
  ``{{ question }}``, ``{{ reference }}``, ``{{ format_instructions }}`` (optional);
* rubric: ``{{ input }}``, ``{{ output }}``, ``{{ criteria }}`` (required),
  ``{{ reference }}``, ``{{ format_instructions }}`` (optional).

``{{ reference }}`` becomes required when the mode sets ``reference: true``. When a
template has no ``{{ format_instructions }}``, the answer format is appended after it,
so an overridden template still asks for the JSON answer the parser accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

PAIRWISE_REQUIRED = ("input", "output_a", "output_b")
PAIRWISE_OPTIONAL = ("question", "reference", "format_instructions")
RUBRIC_REQUIRED = ("input", "output", "criteria")
RUBRIC_OPTIONAL = ("reference", "format_instructions")

DEFAULT_PAIRWISE_SYSTEM = (
    "You are an impartial judge comparing two AI assistant responses to the same user request. "
    "Judge only the quality of the responses. Do not let their order, their length or the "
    "assistants' names influence you."
)

DEFAULT_PAIRWISE_TEMPLATE = """\
{{ question }}

[User request]
{{ input }}
[End of user request]
{% if reference %}
[Reference answer]
{{ reference }}
[End of reference answer]
{% endif %}
[Response A]
{{ output_a }}
[End of Response A]

[Response B]
{{ output_b }}
[End of Response B]

{{ format_instructions }}"""

PAIRWISE_FORMAT = (
    'Answer with one JSON object and nothing else: {"reason": "<one or two sentences>", '
    '"winner": "A"} where winner is "A", "B" or "tie".'
)

DEFAULT_RUBRIC_SYSTEM = (
    "You are a strict, impartial grader of AI assistant responses. Grade only what the "
    "response says; do not reward length."
)

DEFAULT_RUBRIC_TEMPLATE = """\
Grade the response to the user request on each criterion.

[User request]
{{ input }}
[End of user request]
{% if reference %}
[Reference answer]
{{ reference }}
[End of reference answer]
{% endif %}
[Response]
{{ output }}
[End of response]

Criteria:
{{ criteria }}

{{ format_instructions }}"""


def rubric_format(criteria: Sequence[Any]) -> str:
    """The answer format for a rubric: one JSON key per criterion."""
    parts = []
    for c in criteria:
        parts.append(f'"{c.name}": ' + ("<1-5>" if c.scale == "1-5" else '"pass" or "fail"'))
    return (
        "Answer with one JSON object and nothing else: {"
        + ", ".join(parts)
        + ', "reason": "<one or two sentences>"}. Scores 1-5 are integers '
        "(1 = very poor, 5 = excellent)."
    )


def rubric_criteria_text(criteria: Sequence[Any]) -> str:
    """The criteria as a bulleted list (the ``{{ criteria }}`` placeholder)."""
    return "\n".join(
        f"- {c.name} ({'score 1-5' if c.scale == '1-5' else 'pass or fail'}): {c.description}"
        for c in criteria
    )


@lru_cache(maxsize=32)
def _compile(template: str) -> Any:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env, env.from_string(template)


def placeholders(template: str) -> set[str]:
    """The variables a template uses (raises ``ValueError`` when it does not parse)."""
    import jinja2
    from jinja2 import meta

    env = jinja2.Environment()
    try:
        return set(meta.find_undeclared_variables(env.parse(template)))
    except jinja2.TemplateSyntaxError as err:
        raise ValueError(f"template does not parse (line {err.lineno}): {err.message}") from None


def check_template(
    template: str, required: Sequence[str], optional: Sequence[str], *, field: str
) -> None:
    """Refuse a template that misses a required placeholder or uses an unknown one."""
    used = placeholders(template)
    missing = [name for name in required if name not in used]
    unknown = sorted(used - set(required) - set(optional))
    problems = []
    if missing:
        problems.append(
            "lacks the required placeholder(s) " + ", ".join("{{ " + m + " }}" for m in missing)
        )
    if unknown:
        problems.append(
            "uses unknown placeholder(s) "
            + ", ".join("{{ " + u + " }}" for u in unknown)
            + "; allowed: "
            + ", ".join("{{ " + a + " }}" for a in (*required, *optional))
        )
    if problems:
        raise ValueError(f"judge {field} " + " and ".join(problems))


def render(template: str, variables: dict[str, Any], format_instructions: str) -> str:
    """Render ``template``; the answer format is appended when the template has no slot for it."""
    _, compiled = _compile(template)
    text = compiled.render(**variables, format_instructions=format_instructions).strip()
    if "format_instructions" not in placeholders(template):
        text += "\n\n" + format_instructions
    return text
