"""The package's public names resolve to the real objects, lazily."""

from __future__ import annotations

import subprocess
import sys

import tunecheck


def test_every_public_name_resolves_to_its_module_object() -> None:
    import tunecheck.metrics
    import tunecheck.models
    import tunecheck.runner
    import tunecheck.spec

    assert tunecheck.run is tunecheck.runner.run
    assert tunecheck.load_spec is tunecheck.spec.load_spec
    assert tunecheck.metric is tunecheck.metrics.metric
    assert tunecheck.backend is tunecheck.models.backend
    for name in tunecheck.__all__:
        assert getattr(tunecheck, name) is not None, name
    assert set(tunecheck.__all__) <= set(dir(tunecheck))
    assert set(tunecheck.__all__) == {"__version__", *tunecheck._EXPORTS}


def test_unknown_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tunecheck.nope  # type: ignore[attr-defined]


def test_import_tunecheck_loads_no_heavy_library() -> None:
    code = (
        "import sys, tunecheck; "
        "heavy = [m for m in ('torch', 'transformers', 'sqlalchemy', 'scipy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
