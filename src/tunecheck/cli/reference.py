"""The README's CLI reference, generated from the typer app so it cannot drift.

``python -m tunecheck.cli.reference --write README.md`` rewrites the block between
the ``<!-- cli-reference:start -->`` and ``<!-- cli-reference:end -->`` markers; a test
fails when the README's block differs from what this renders.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperOption

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"


def _option_line(param: Any, ctx: Any) -> str:
    # typer ships its own click: go by click's public help records, not its classes
    if param.param_type_name == "argument":
        name = f"`{(param.metavar or param.name).upper()}`"
        req = "" if param.required else " (optional)"
        help_text = (param.help or "").strip()
        return f"- {name}{req}" + (f": {help_text}" if help_text else "")
    record = param.get_help_record(ctx)
    if record is None:
        return ""
    names, help_text = record
    return f"- `{names}`: {' '.join(help_text.split())}"


def _commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
    ctx = group.context_class(group)
    out: list[tuple[str, Any]] = []
    for name in sorted(group.list_commands(ctx)):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        full = f"{prefix} {name}"
        if hasattr(cmd, "list_commands"):
            out += _commands(cmd, full)
        else:
            out.append((full, cmd))
    return out


def render(app: typer.Typer | None = None) -> str:
    """Markdown for every verb: usage line, first help paragraph, arguments and options."""
    if app is None:
        from tunecheck.cli import app as default_app

        app = default_app
    root = typer.main.get_command(app)
    lines = [START, ""]
    # typer builds its own option class on its vendored click (not click.Option)
    root_opts = [p for p in root.params if isinstance(p, TyperOption) and not p.hidden]
    lines.append(
        "Global options (before the verb): "
        + ", ".join(f"`{o.opts[0]}` ({o.help})" for o in root_opts)
        + "."
    )
    lines.append("")
    for full, cmd in _commands(root, "tunecheck"):
        ctx = cmd.context_class(cmd, info_name=full)
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        # typer writes argument metavars as {name} / [name]; the help text says NAME
        usage = re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), usage)
        usage = re.sub(r"\[(\w+)\]", lambda m: f"[{m.group(1).upper()}]", usage)
        lines.append(f"#### `{full}`")
        lines.append("")
        lines.append(f"`{full} {usage}`".replace("  ", " "))
        lines.append("")
        help_text = (cmd.help or "").strip().split("\n\n")[0].replace("\n", " ")
        if help_text:
            lines.append(help_text)
            lines.append("")
        params = [p for p in cmd.params if not getattr(p, "hidden", False)]
        for p in params:
            line = _option_line(p, ctx)
            if line:
                lines.append(line)
        if params:
            lines.append("")
    lines.append(END)
    return "\n".join(lines)


def readme_block(text: str) -> str:
    """The reference block currently in a README text (markers included)."""
    start, end = text.index(START), text.index(END) + len(END)
    return text[start:end]


def write(readme: Path) -> bool:
    """Rewrite the README's block; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    new = text.replace(readme_block(text), render())
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        print("updated" if write(Path(sys.argv[2])) else "up to date")
    else:
        print(render())
