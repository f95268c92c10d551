"""Model references in a spec: local paths resolve next to the spec, hub ids stay as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunecheck.spec import load_spec

SPEC = """\
contenders:
  - name: base
    model: hf:models/base
  - name: finetuned
    model: {model}
task:
  data: test.jsonl
"""


def _model(tmp_path: Path, ref: str) -> str:
    (tmp_path / "tunecheck.yaml").write_text(SPEC.format(model=ref))
    return load_spec(tmp_path / "tunecheck.yaml").contenders[1].model


def _adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_hub_id_with_local_adapter_keeps_the_hub_id(tmp_path: Path) -> None:
    _adapter(tmp_path / "adapters" / "lora")
    got = _model(tmp_path, "hf:HuggingFaceTB/SmolLM2-135M-Instruct+adapter=adapters/lora")
    assert got == f"hf:HuggingFaceTB/SmolLM2-135M-Instruct+adapter={tmp_path}/adapters/lora"


def test_hub_id_alone_is_untouched(tmp_path: Path) -> None:
    assert _model(tmp_path, "hf-classifier:org/name") == "hf-classifier:org/name"


def test_local_base_and_local_adapter_both_resolve(tmp_path: Path) -> None:
    (tmp_path / "models" / "base").mkdir(parents=True)
    _adapter(tmp_path / "out" / "adapter")
    got = _model(tmp_path, "hf:models/base+adapter=out/adapter")
    assert got == f"hf:{tmp_path}/models/base+adapter={tmp_path}/out/adapter"


def test_dot_relative_paths_resolve_even_before_they_exist(tmp_path: Path) -> None:
    got = _model(tmp_path, "hf:./models/base+adapter=../lora")
    assert got == f"hf:{tmp_path}/models/base+adapter={tmp_path}/../lora"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    ref = f"hf:{other}/base+adapter={other}/a+b/lora"
    # a `+` inside a path is part of the path, not an option separator
    assert _model(tmp_path, ref) == ref


def test_home_is_expanded_in_base_and_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    got = _model(tmp_path, "hf:~/models/base+adapter=~/lora")
    assert got == f"hf:{home}/models/base+adapter={home}/lora"


def test_openai_reference_is_never_rewritten(tmp_path: Path) -> None:
    (tmp_path / "gpt").mkdir()
    ref = "openai:gpt@http://127.0.0.1:8000/v1"
    assert _model(tmp_path, ref) == ref
