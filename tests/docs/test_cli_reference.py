"""The README's command-line reference is the one the app renders (regenerate it when this fails)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tunecheck.cli import app
from tunecheck.cli.reference import readme_block, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_cli_reference_is_current() -> None:
    assert readme_block(README.read_text(encoding="utf-8")) == render(), (
        "README's CLI reference is stale: run `python -m tunecheck.cli.reference --write README.md`"
    )


def test_every_verb_and_flag_is_in_the_reference() -> None:
    block = readme_block(README.read_text(encoding="utf-8"))
    runner = CliRunner()
    for verb in ("run", "runs", "show", "report", "split", "verify", "diagnose", "checkpoints"):
        help_text = runner.invoke(app, [verb, "--help"]).output
        assert f"#### `tunecheck {verb}`" in block
        for token in help_text.split():
            if token.startswith("--") and token.rstrip(",").isascii():
                flag = token.rstrip(",").split("=")[0]
                if flag != "--help":
                    assert f"`{flag}" in block or f" {flag}" in block, (verb, flag)


def test_result_verbs_take_json() -> None:
    runner = CliRunner()
    for verb in ("run", "runs", "show", "report", "split", "verify", "diagnose", "checkpoints"):
        assert "--json" in runner.invoke(app, [verb, "--help"]).output, verb
