"""The import architecture: modules import on their own, no cycles, the core stays off the spec.

Layering (README, "Development"): the core (``tunecheck.core`` types, data loading,
metrics, statistics, scoring, the result schema, the verdict) never imports the YAML
spec (:mod:`tunecheck.spec`); the spec converts into the core types at the boundary,
and the pipeline (runner, evaluate) wires the two. The graph is read from the source
with ``ast``, so these tests need no import of the package except the isolation test.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: modules (and packages, with everything under them) that make up the core
CORE = (
    "tunecheck.core",
    "tunecheck.errors",
    "tunecheck.examples",
    "tunecheck.prompts",
    "tunecheck.registry",
    "tunecheck.stats",
    "tunecheck.metrics",
    "tunecheck.length",
    "tunecheck.flips",
    "tunecheck.formatting",
    "tunecheck.probe_rules",
    "tunecheck.results",
    "tunecheck.completeness",
    "tunecheck.verdict",
    "tunecheck.data.load",
    "tunecheck.data.lock",
    "tunecheck.pipeline.scoring",
    "tunecheck.requests",
    "tunecheck.task",
)
#: the YAML boundary: what the core must not import
SPEC_MODULES = ("tunecheck.spec", "tunecheck.spec_yaml")
#: modules that import each other lazily (inside functions): known debt, to be removed, not
#: grown. Each pair is a cycle that only the import's placement keeps from failing.
KNOWN_LAZY_MUTUAL: dict[tuple[str, str], str] = {}
#: third-party libraries slow enough to import that their importers get their own process
HEAVY = ("torch", "transformers")


# --------------------------------------------------------------------------- the graph


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    #: tunecheck modules imported when this module is imported (module level, at run time)
    top: set[str] = field(default_factory=set)
    #: every tunecheck module imported anywhere, with its line (functions, TYPE_CHECKING too)
    anywhere: dict[str, int] = field(default_factory=dict)
    #: tunecheck modules imported at run time anywhere (functions too; not TYPE_CHECKING)
    runtime: set[str] = field(default_factory=set)
    #: first component of every third-party module imported at module level
    external: set[str] = field(default_factory=set)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: not in functions or classes' methods, not
    under ``if TYPE_CHECKING:`` (its ``else:`` runs)."""
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt
        elif isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                yield from _module_level_imports(stmt.body)
            yield from _module_level_imports(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                yield from _module_level_imports(block)
        elif isinstance(stmt, ast.With | ast.ClassDef):  # a class body runs at import time
            yield from _module_level_imports(stmt.body)


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: at any depth, except under ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.orelse:
            yield from _runtime_imports(child)
        return
    for child in ast.iter_child_nodes(node):
        yield from _runtime_imports(child)


def _modules(src: Path, package: str) -> dict[str, Module]:
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        out[name] = Module(name, path, is_package, ast.parse(path.read_text(encoding="utf-8")))
    return out


def _targets(mod: Module, node: ast.Import | ast.ImportFrom, known: dict[str, Module]) -> list[str]:
    """The modules of the package an import statement loads.

    ``from a.b import c`` loads ``a.b.c`` when that is a module, else ``a.b`` (``c`` is a
    name in it). Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, except where
    that package encloses the importer (it is already being imported).
    """
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join([*base, *([node.module] if node.module else [])])
        else:
            prefix = node.module or ""
        names = [
            f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix
            for alias in node.names
        ]
    out = []
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            ancestor = ".".join(parts[:i])
            encloses = mod.name == ancestor or mod.name.startswith(ancestor + ".")
            if ancestor in known and (ancestor == name or not encloses) and ancestor != mod.name:
                out.append(ancestor)
    return out


def import_graph(src: Path = SRC, package: str = "tunecheck") -> dict[str, Module]:
    """Every module of ``package`` under ``src`` with its imports (see :class:`Module`)."""
    mods = _modules(src, package)
    for mod in mods.values():
        for node in _module_level_imports(mod.tree.body):
            mod.top.update(_targets(mod, node, mods))
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            else:
                roots = [] if node.level else [(node.module or "").split(".")[0]]
            mod.external.update(r for r in roots if r != package)
        for node in _runtime_imports(mod.tree):
            mod.runtime.update(_targets(mod, node, mods))
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(mod, node, mods):
                    mod.anywhere.setdefault(target, node.lineno)
    return mods


def find_cycle(mods: dict[str, Module]) -> list[str] | None:
    """A cycle of module-level imports (``[a, b, ..., a]``), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in sorted(mods[name].top):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)) is not None:
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(mods):
        if name not in state and (found := visit(name)) is not None:
            return found
    return None


def closure(mods: dict[str, Module], name: str) -> dict[str, str]:
    """Modules imported (at module level) when ``name`` is imported -> who imports each."""
    seen: dict[str, str] = {}
    stack = [name]
    while stack:
        current = stack.pop()
        for dep in mods[current].top:
            if dep not in seen and dep != name:
                seen[dep] = current
                stack.append(dep)
    return seen


def chain(via: dict[str, str], start: str, end: str) -> str:
    """``start -> ... -> end`` through the importers recorded by :func:`closure`."""
    hops = [end]
    while hops[-1] != start:
        hops.append(via[hops[-1]])
    return " -> ".join(reversed(hops))


def in_core(name: str, core: tuple[str, ...] = CORE) -> bool:
    return any(name == c or name.startswith(c + ".") for c in core)


def spec_imports(
    mods: dict[str, Module],
    core: tuple[str, ...] = CORE,
    spec: tuple[str, ...] = SPEC_MODULES,
) -> list[str]:
    """Each import of the spec by a core module (lazy and TYPE_CHECKING imports count), and
    each core module that loads the spec through another module, as messages."""
    problems = []
    for name, mod in sorted(mods.items()):
        if not in_core(name, core):
            continue
        for target, line in sorted(mod.anywhere.items()):
            if target in spec:
                problems.append(f"{mod.path}:{line}: core module {name} imports {target}")
        via = closure(mods, name)
        for target in spec:
            if target in via and target not in mod.top:
                problems.append(
                    f"core module {name} loads {target} through {chain(via, name, target)}"
                )
    return problems


@pytest.fixture(scope="module")
def graph() -> dict[str, Module]:
    return import_graph()


# --------------------------------------------------------------------------- the rules


def test_the_module_level_import_graph_has_no_cycle(graph):
    assert len(graph) > 100  # the whole package was read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def lazy_mutual_imports(mods: dict[str, Module]) -> set[tuple[str, str]]:
    """Pairs of modules (not a package and its own module) importing each other at run time."""
    return {
        (a, b)
        for a, mod in mods.items()
        for b in mod.runtime
        if a < b and a in mods[b].runtime and not (a.startswith(b + ".") or b.startswith(a + "."))
    }


def test_no_new_pair_of_modules_imports_each_other(graph):
    pairs = lazy_mutual_imports(graph)
    new = sorted(pairs - set(KNOWN_LAZY_MUTUAL))
    assert not new, f"modules importing each other (move the shared part out): {new}"
    fixed = sorted(set(KNOWN_LAZY_MUTUAL) - pairs)
    assert not fixed, f"no longer mutual, remove from KNOWN_LAZY_MUTUAL: {fixed}"


def test_no_core_module_imports_the_yaml_spec(graph):
    core = [name for name in graph if in_core(name)]
    # every declared core entry exists (a renamed module must be renamed here too)
    assert all(any(in_core(name, (c,)) for name in graph) for c in CORE), CORE
    assert len(core) >= len(CORE)
    problems = spec_imports(graph)
    assert not problems, "\n".join(problems)


def test_the_spec_converts_into_the_core_types():
    from tunecheck import core, spec

    fields = spec.FieldMap(input="question", id=None).to_core()
    assert fields == core.FieldMap(input="question", id=None)
    assert fields.given == {"input", "id"}
    assert spec.ParserSpec(type="label", labels=["a", "b"]).to_core() == core.Parser(
        type="label", labels=("a", "b")
    )
    assert spec.Thresholds(warn=0.1, fail=0.2).to_core() == core.Thresholds(warn=0.1, fail=0.2)
    assert spec.CodeSpec(timeout=3).to_core() == core.CodeSettings(timeout=3.0)
    # the spec's models and the core types have the same attributes, so either may be passed
    for model, core_type in (
        (spec.FieldMap, core.FieldMap),
        (spec.ParserSpec, core.Parser),
        (spec.Thresholds, core.Thresholds),
        (spec.CodeSpec, core.CodeSettings),
    ):
        core_fields = set(core_type.__dataclass_fields__) - {"given"}
        assert set(model.model_fields) == core_fields, model


_ISOLATION = textwrap.dedent(
    """
    import importlib, json, sys, traceback
    names, spec_modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    report = {}
    for name in names:
        for loaded in [m for m in sys.modules if m == "tunecheck" or m.startswith("tunecheck.")]:
            del sys.modules[loaded]
        try:
            importlib.import_module(name)
            error = None
        except BaseException:
            error = traceback.format_exc(limit=-3)
        report[name] = {"error": error, "spec": [m for m in spec_modules if m in sys.modules]}
    print(json.dumps(report))
    """
)


def _heavy(graph: dict[str, Module]) -> set[str]:
    """Modules whose import loads torch or transformers (directly or through tunecheck)."""
    direct = {n for n, m in graph.items() if m.external & set(HEAVY)}
    return {n for n in graph if n in direct or direct & set(closure(graph, n))}


def isolation_report(names: list[str], groups: list[list[str]]) -> dict[str, dict]:
    """Import each module in a state with no tunecheck module loaded; groups run in parallel."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ISOLATION, json.dumps(group), json.dumps(SPEC_MODULES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for group in groups
        if group
    ]
    report: dict[str, dict] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        report.update(json.loads(out.strip().splitlines()[-1]))
    assert sorted(report) == sorted(names)
    return report


@pytest.mark.slow
def test_every_module_imports_on_its_own(graph):
    # __main__ runs the CLI; Alembic's migration scripts are loaded by Alembic from files
    names = sorted(n for n in graph if not n.endswith("__main__") and ".store.migrations" not in n)
    heavy = _heavy(graph)
    assert "tunecheck.training.callback" in heavy  # TrainerCallback: transformers at import
    report = isolation_report(
        names, [[n for n in names if n in heavy], [n for n in names if n not in heavy]]
    )
    failed = {n: r["error"] for n, r in report.items() if r["error"]}
    assert not failed, "\n\n".join(f"{n}:\n{e}" for n, e in failed.items())
    # what ast says about the core holds at run time too: importing it never loads the spec
    loads_spec = {n: r["spec"] for n, r in report.items() if in_core(n) and r["spec"]}
    assert not loads_spec, loads_spec


# --------------------------------------------------------------------------- the checker


def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, Module]:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return import_graph(tmp_path, "pkg")


def test_checker_finds_a_cycle_and_ignores_lazy_and_type_checking_imports(tmp_path):
    mods = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg.b import x\n",
            "b.py": "from . import c\nx = 1\n",
            "c.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.a import y
                def f():
                    from pkg import a
            """,
        },
    )
    assert mods["pkg.b"].top == {"pkg.c"}
    assert mods["pkg.c"].top == set() and set(mods["pkg.c"].anywhere) == {"pkg.a"}
    assert find_cycle(mods) is None
    mods = _package(
        tmp_path,
        {"c.py": "import pkg.sub.d\n", "sub/__init__.py": "from pkg import a\n", "sub/d.py": ""},
    )
    # c -> pkg.sub (its __init__ runs) -> a -> b -> c
    assert find_cycle(mods) == ["pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.a"]


def test_checker_flags_a_core_module_importing_the_spec_lazily_or_through_another(tmp_path):
    mods = _package(
        tmp_path,
        {
            "__init__.py": "",
            "spec.py": "",
            "helper.py": "from pkg.spec import X\n",
            "core.py": "def f():\n    from pkg.spec import X\n",
            "scoring.py": "import pkg.helper\n",
            "clean.py": "from pkg import core\n",
        },
    )
    problems = spec_imports(mods, core=("pkg.core", "pkg.scoring", "pkg.clean"), spec=("pkg.spec",))
    assert len(problems) == 2, problems
    assert problems[0].endswith("core.py:2: core module pkg.core imports pkg.spec")
    assert problems[1] == (
        "core module pkg.scoring loads pkg.spec through pkg.scoring -> pkg.helper -> pkg.spec"
    )


def test_checker_finds_modules_importing_each_other_lazily(tmp_path):
    mods = _package(
        tmp_path,
        {
            "__init__.py": "",
            "x.py": "def f():\n    import pkg.y\n",
            "y.py": "def g():\n    from pkg import x\n",
            "z.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import x\n",
        },
    )
    assert find_cycle(mods) is None  # nothing at module level
    assert lazy_mutual_imports(mods) == {("pkg.x", "pkg.y")}
    assert mods["pkg.z"].runtime == set() and "pkg.x" in mods["pkg.z"].anywhere
