"""Read the README's fenced blocks and the `readme-test` markers that tell the test how to run them.

A marker is an HTML comment (invisible on the rendered page) on the lines just above a
fence:

- ``<!-- readme-test: skip REASON -->``: do not run this block, for the stated reason.
- ``<!-- readme-test: setup`` … ``-->``: hidden Python run just before the block (prepares
  small local data or objects the text assumes the reader has).
- ``<!-- readme-test: replace OLD => NEW -->``: run the block with ``OLD`` replaced (a
  placeholder path by a real one, ``--limit`` added to a model-heavy command); ``NEW`` may
  name ``{model}`` (the embedded model folder) and ``{adapter}`` (a small LoRA adapter).
- ``<!-- readme-test: file NAME -->``: the block (a spec, a data file) is written to NAME
  in the folder where the README's commands run.
- ``<!-- readme-test: expect-output -->``: each ``print(...)  # TEXT`` line must print
  TEXT (whitespace collapsed; a TEXT ending in ``...`` is a prefix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
MARKER = re.compile(r"<!--\s*readme-test:\s*(\w[\w-]*)(.*?)-->", re.S)


@dataclass
class Block:
    line: int  # 1-based line of the first code line
    lang: str
    code: str
    skip: str | None = None
    setup: str = ""
    replacements: list[tuple[str, str]] = field(default_factory=list)
    expect_output: bool = False
    file: str | None = None

    def runnable_code(self, values: dict[str, str]) -> str:
        code = self.code
        for old, new in self.replacements:
            if old not in code:
                raise AssertionError(f"README.md:{self.line}: replace marker {old!r} not in block")
            code = code.replace(old, fill(new.replace("\\n", "\n"), values))
        return code


def fill(text: str, values: dict[str, str]) -> str:
    """Put the test's values in for ``{model}``, ``{adapter}``, ``{repo}`` (other braces stay)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def parse(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith("```"):
            j += 1
        code = "\n".join(line[len(indent) :] for line in lines[start:j])
        block = Block(line=start + 1, lang=lang, code=code)
        _attach_markers(block, lines, i)
        blocks.append(block)
        i = j + 1
    return blocks


def _attach_markers(block: Block, lines: list[str], fence: int) -> None:
    # the HTML comments directly above the fence (blank lines between them allowed)
    k = fence - 1
    comments: list[str] = []
    while k >= 0:
        if not lines[k].strip():
            k -= 1
            continue
        if not lines[k].rstrip().endswith("-->"):
            break
        end = k
        while k >= 0 and "<!--" not in lines[k]:
            k -= 1
        comments.insert(0, "\n".join(lines[k : end + 1]))
        k -= 1
    for kind, body in MARKER.findall("\n".join(comments)):
        if kind == "skip":
            block.skip = body.strip() or "(no reason given)"
        elif kind == "setup":
            block.setup += body.strip("\n") + "\n"
        elif kind == "replace":
            old, sep, new = body.strip().partition("=>")
            if not sep:
                raise AssertionError(f"README.md:{block.line}: replace marker needs OLD => NEW")
            block.replacements.append((old.strip(), new.strip()))
        elif kind == "expect-output":
            block.expect_output = True
        elif kind == "file":
            block.file = body.strip()
        else:
            raise AssertionError(f"README.md:{block.line}: unknown readme-test marker {kind!r}")
