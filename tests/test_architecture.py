"""The package's shape: every module imports, no cycle, imports at the top, small modules, lint.

The graph is read from the source with :mod:`ast`: an edge ``a -> b`` for every
``import`` of a skedge module ``b`` in module ``a``, at module level or inside a
function (and ``a -> p`` for the subpackage ``p`` that holds ``b``, whose
``__init__`` runs first). An import marked ``# lazy:`` on its line is left out of the graph, but
the marked imports are listed here (:data:`LAZY_IMPORTS`) so that none is added
without a reason. In every module, an import inside a function must be marked
``# lazy:`` or ``# optional:`` (a truly optional dependency) with the reason on
its line; no module is longer than :data:`MAX_LINES`; and ``ruff check`` (the
version pinned in the ``test`` extra, the rules in ``pyproject.toml``) finds
nothing. The modules not yet brought there are listed, each with its issue
(:data:`LATE_IMPORT_EXCEPTIONS`, :data:`SIZE_EXCEPTIONS`); a listed module that
complies must leave the list.
"""

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import skedge

ROOT = Path(skedge.__file__).parent

#: Cycles not yet broken, each with the issue that owns it.
KNOWN_CYCLES = []  # the measurement-file format now lives in skedge.datasets

#: Imports marked ``# lazy:`` (left out of the graph), as (module, imported module).
LAZY_IMPORTS = set()  # the compatibility re-exports of #13 are gone

#: Longest module, in lines: a module past it holds more than one concept (#13).
MAX_LINES = 500

#: Modules still importing inside functions without a ``# lazy:`` / ``# optional:`` mark.
LATE_IMPORT_EXCEPTIONS = {}  # #13: the job is a workflow plus CLI commands, imports at top

#: Modules longer than :data:`MAX_LINES`, each with the issue that splits it.
SIZE_EXCEPTIONS = {}  # #13: skedge._job is split into skedge.workflow and skedge._cli


def _module_names():
    names = ["skedge"]
    for info in pkgutil.walk_packages([str(ROOT)], "skedge."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def _path(module):
    rel = Path(*module.split(".")[1:])
    pkg = ROOT / rel / "__init__.py"
    return pkg if pkg.is_file() else (ROOT / rel).with_suffix(".py")


def _resolve(module, node):
    """The skedge modules an import node names (``from . import x`` may name a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "skedge"]
    if node.level:
        is_pkg = _path(module).name == "__init__.py"
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_pkg else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "skedge":
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    # Importing skedge.a.b runs skedge/a/__init__.py first: an edge to the package too,
    # unless the importer lives in it (siblings importing siblings is the package's own
    # business). The root package is left out: it imports everything on purpose.
    for name in list(out):
        parts = name.split(".")
        for k in range(2, len(parts)):
            parent = ".".join(parts[:k])
            if not (module == parent or module.startswith(parent + ".")):
                out.append(parent)
    return out


def _import_nodes(module):
    """``(node, inside a function, line text)`` for every import statement of ``module``."""
    source = _path(module).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    return [(n, id(n) in inside, lines[n.lineno - 1]) for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom))]


def _graph():
    edges, lazy = {m: set() for m in MODULES}, set()
    for module in MODULES:
        for node, _, line in _import_nodes(module):
            for target in _resolve(module, node):
                if target == module:
                    continue
                if "# lazy:" in line:
                    lazy.add((module, target))
                else:
                    edges[module].add(target)
    return edges, lazy


def _strongly_connected(edges):
    """Tarjan's algorithm: the strongly connected components with more than one module."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("module", [m for m in MODULES if not m.endswith("__main__")])
def test_module_imports(module):
    importlib.import_module(module)


def test_no_import_cycle_but_the_known_ones():
    edges, _ = _graph()
    cycles = _strongly_connected(edges)
    unexpected = [c for c in cycles if c not in KNOWN_CYCLES]
    assert not unexpected, f"import cycles among skedge modules: {unexpected}"


def test_fixed_cycles_stay_fixed():
    # The cycles broken in #13: the schema does not import its users, and spaces read no file.
    edges, _ = _graph()
    assert "skedge.preprocessing" not in edges["skedge.devices"]
    assert not {m for m in edges["skedge.devices"] if m.startswith("skedge.datasets")}
    # The schema module is the schema only: no file, no encoder, no machine (#13).
    assert edges["skedge.devices"] <= {"skedge._checks"}
    for module in MODULES:
        if module.startswith("skedge.spaces"):
            assert all(t.startswith("skedge.spaces") for t in edges[module]), module


def test_lazy_imports_are_the_listed_ones():
    _, lazy = _graph()
    assert lazy == LAZY_IMPORTS


def _late_imports(module):
    return [f"{module}:{node.lineno}: {line.strip()}" for node, inside, line in _import_nodes(module)
            if inside and "# lazy:" not in line and "# optional:" not in line]


def _n_lines(module):
    return len(_path(module).read_text().splitlines())


@pytest.mark.parametrize("module", MODULES)
def test_imports_at_module_top(module):
    late = _late_imports(module)
    if module in LATE_IMPORT_EXCEPTIONS:
        assert late, f"{module} imports at the top now: remove it from LATE_IMPORT_EXCEPTIONS"
        return
    assert not late, "imports inside functions (move them to the top, or mark them " \
        "'# lazy: <why>' / '# optional: <why>'):\n" + "\n".join(late)


@pytest.mark.parametrize("module", MODULES)
def test_module_size(module):
    n = _n_lines(module)
    if module in SIZE_EXCEPTIONS:
        assert n > MAX_LINES, f"{module} has {n} lines now: remove it from SIZE_EXCEPTIONS"
        return
    assert n <= MAX_LINES, (
        f"{module} has {n} lines (at most {MAX_LINES}): split it by concept into a subpackage "
        "or sibling modules (see docs/dev/architecture.rst)"
    )


def test_exceptions_name_existing_modules():
    assert set(LATE_IMPORT_EXCEPTIONS) <= set(MODULES)
    assert set(SIZE_EXCEPTIONS) <= set(MODULES)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="ruff is in the 'test' extra: pip install -e '.[test]'")
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(repo)],
                          capture_output=True, text=True, cwd=repo, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
