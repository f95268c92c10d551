"""Load a spec's ``plugins:``: the user's own metrics, backends and probes.

A plugin is any module whose import runs tunecheck's decorators (``@metric``,
``@backend``, ``@probe``). A spec names it by dotted module name (importable from the
current environment) or by a ``.py`` file path relative to the spec. Installed
packages can instead declare entry points (see :mod:`tunecheck.registry`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from tunecheck.errors import SpecError


def load_plugins(
    plugins: Sequence[str], *, base_dir: Path | None = None, source: str | None = None
) -> list[ModuleType]:
    """Import each plugin once; a missing or broken one is a :class:`SpecError` naming it."""
    modules = []
    for i, name in enumerate(plugins):
        where = f"{source or 'spec'}: plugins[{i}]"
        if name.endswith(".py"):
            modules.append(_load_file(name, base_dir=base_dir, where=where))
            continue
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            raise SpecError(
                f"plugin module {name!r} not found ({err})",
                where=where,
                hint="install the package that provides it, or give a .py file path",
            ) from None
        except Exception as err:
            raise SpecError(
                f"plugin module {name!r} failed to import: {type(err).__name__}: {err}",
                where=where,
            ) from None
    return modules


def _load_file(name: str, *, base_dir: Path | None, where: str) -> ModuleType:
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    path = path.resolve()
    if not path.is_file():
        raise SpecError(f"plugin file {str(path)!r} does not exist", where=where)
    # one module per file path: loading the same spec twice must not register twice
    mod_name = "tunecheck_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        raise SpecError(f"cannot import plugin file {str(path)!r}", where=where)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[mod_name]
        raise SpecError(
            f"plugin file {str(path)!r} failed to import: {type(err).__name__}: {err}",
            where=where,
        ) from None
    return module
