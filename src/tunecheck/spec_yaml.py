"""Writing spec YAML by hand-readable rules: prompts as block literals that load back exactly.

Used by ``tunecheck init`` and ``tunecheck demo``: a spec is templated for its comments,
but every prompt inside it is *dumped*, never pasted, so what loads is what was meant.
"""

from __future__ import annotations

from typing import Any

import yaml


class _ReadableDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` block literals, so a prompt reads as it is."""


# characters a YAML loader reads as line breaks: a block literal cannot carry them as text
_ODD_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted scalar by itself when a block cannot hold the
    # text exactly (trailing spaces, control characters); odd line breaks are escaped
    if any(c in value for c in _ODD_BREAKS):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _str_representer)


def prompt_yaml(prompt: dict[str, Any], indent: int) -> str:
    """``prompt`` (``system``, ``few_shot``...) as YAML lines indented by ``indent`` spaces.

    Multi-line text is a ``|`` block literal, so it reads as it is and loads back
    character for character: the spec is dumped, not templated.
    """
    readable = yaml.dump(
        prompt, Dumper=_ReadableDumper, allow_unicode=True, sort_keys=False, width=100
    )
    text = _indented(readable, indent)
    if not _loads_back(text, indent, prompt):
        # text a readable form cannot hold exactly (or not once indented inside the spec):
        # every string double-quoted and escaped
        text = _indented(
            yaml.safe_dump(prompt, default_style='"', sort_keys=False, width=100), indent
        )
    return text


def _indented(text: str, indent: int) -> str:
    return "\n".join(" " * indent + line if line else line for line in text.rstrip().splitlines())


def _loads_back(text: str, indent: int, value: Any) -> bool:
    """Does ``text``, placed under a key at ``indent`` as the spec places it, load as ``value``?"""
    doc = f"prompt:\n{text}\n" if indent else f"{text}\n"
    try:
        loaded = yaml.safe_load(doc)
    except yaml.YAMLError:
        return False
    return (loaded.get("prompt") if indent and isinstance(loaded, dict) else loaded) == value
