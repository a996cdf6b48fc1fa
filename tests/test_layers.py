"""The import graph of genevae flows one way (issue 20; STYLE.md, "The shape of the house").

Every ``import`` statement of every module under ``src/genevae`` is read with :mod:`ast`,
wherever it stands (module level, inside a function, under ``if TYPE_CHECKING:``), and

(a) goes into its own group or into a group of lower rank in :data:`LAYERS`; an import
    sideways (another group of the same rank) or upward fails;
(b) the module graph has no circle (every import counts, deferred ones too);
(c) every module is placed in a group of :data:`LAYERS`;
(d) no module is over :data:`MAX_LINES` lines.

``genevae/__init__.py`` is the lazy facade: it imports no genevae module statically and
is otherwise exempt; other modules may import from it only the names it defines itself
(``__version__``), not the names it loads lazily.

The checker is the pure functions below; ``test_checker_*`` run it on small made-up
packages first, so a failure on the real tree is the tree's, not the checker's.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
FACADE = "genevae"
#: Longest module, in lines (STYLE.md: small files, one concept each).
MAX_LINES = 450


@dataclass(frozen=True)
class Layer:
    """A group of modules (by module-name prefix) and its rank; imports go down the ranks."""

    rank: int
    name: str
    prefixes: tuple[str, ...]


LAYERS = (
    Layer(0, "core", ("genevae.errors", "genevae.files", "genevae.config", "genevae.runfolder",
                      "genevae.conventions")),
    Layer(1, "data", ("genevae.data",)),
    Layer(1, "history", ("genevae.history",)),
    Layer(2, "model", ("genevae.model",)),
    Layer(3, "train", ("genevae.train",)),
    Layer(3, "diagnosis", ("genevae.diagnosis",)),
    Layer(4, "plot", ("genevae.plot",)),
    Layer(4, "report", ("genevae.report",)),
    Layer(5, "services", ("genevae.services",)),
    Layer(6, "commands", ("genevae.commands",)),
    Layer(7, "api", ("genevae.api",)),
    Layer(7, "cli", ("genevae.cli",)),
    Layer(8, "__main__", ("genevae.__main__",)),
)


@dataclass(frozen=True)
class Module:
    """One ``.py`` file: its dotted name, its path as messages show it, its text."""

    name: str
    path: str
    source: str

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")


@dataclass(frozen=True)
class Import:
    """One import statement of ``importer``, resolved to the genevae module it loads."""

    importer: str
    target: str
    names: tuple[str, ...]  # what ``from target import ...`` takes; () for ``import target``
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


# ----------------------------------------------------------------------------- the checker


def module_name(relative: PurePosixPath) -> str:
    """``genevae/report/page.py`` -> ``genevae.report.page``; a package's ``__init__.py``
    -> the package."""
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def make_modules(files: Mapping[str, str], prefix: str = "src/") -> dict[str, Module]:
    """Modules from ``{"genevae/x/y.py": source}``."""
    modules = [Module(module_name(PurePosixPath(path)), prefix + path, source)
               for path, source in files.items()]
    return {m.name: m for m in modules}


def _is_genevae(name: str) -> bool:
    return name == FACADE or name.startswith(FACADE + ".")


def resolve_from(importer: Module, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    package = importer.name if importer.is_package else importer.name.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{module}" if module else package


def imports_of(module: Module, known: Collection[str]) -> list[Import]:
    """Every import of a genevae module in ``module``, in line order.

    ``from genevae.x import y`` loads ``genevae.x.y`` when that is a module in ``known``,
    else ``genevae.x``; relative imports are made absolute first.
    """
    found: dict[tuple[str, int], list[str]] = {}
    for node in ast.walk(ast.parse(module.source, filename=module.path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault((alias.name, node.lineno), [])
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(module, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    found.setdefault((submodule, node.lineno), [])
                else:
                    found.setdefault((base, node.lineno), []).append(alias.name)
    return sorted((Import(module.name, target, tuple(names), module.path, line)
                   for (target, line), names in found.items()
                   if _is_genevae(target) and target != module.name),
                  key=lambda i: (i.line, i.target))


def defined_names(module: Module) -> frozenset[str]:
    """Names ``module`` binds itself at its top level (assignments, functions, classes)."""
    names = set()
    for node in ast.parse(module.source, filename=module.path).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names - {"__getattr__"})


def layer_of(module: str, layers: Iterable[Layer] = LAYERS) -> Layer | None:
    """The layer whose prefix is the longest match of ``module`` (None if none matches)."""
    matches = [(len(prefix), layer) for layer in layers for prefix in layer.prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def facade_imports(facade: Module, known: Collection[str]) -> list[str]:
    """(facade) The lazy facade's static imports of genevae modules."""
    return [f"{i.where}: the lazy facade {FACADE} imports {i.target} statically; load it "
            "on first use instead (a name in _PUBLIC, imported by __getattr__)."
            for i in imports_of(facade, known)]


def unplaced(modules: Mapping[str, Module], layers: Iterable[Layer] = LAYERS) -> list[str]:
    """(c) Modules in no layer, one message per top-level module or package."""
    layers = tuple(layers)
    missing: dict[str, list[Module]] = {}
    for name, module in sorted(modules.items()):
        if name != FACADE and layer_of(name, layers) is None:
            missing.setdefault(".".join(name.split(".")[:2]), []).append(module)
    problems = []
    for top, members in missing.items():
        shown = (members[0].path if len(members) == 1 else
                 f"{PurePosixPath(members[0].path).parent}/ ({len(members)} modules)")
        problems.append(f"{shown}: {top} is in no layer. A new top-level module must be placed "
                        "in LAYERS (tests/test_layers.py), in the group its imports allow.")
    return problems


def layer_violations(imports: Iterable[Import], facade_names: Collection[str] = (),
                     layers: Iterable[Layer] = LAYERS) -> list[str]:
    """(a) Imports sideways or upward, and imports of names the facade loads lazily."""
    layers = tuple(layers)
    problems = []
    for i in imports:
        if i.importer == FACADE:
            continue  # facade_imports
        if i.target == FACADE:
            lazy = [n for n in i.names if n not in facade_names] if i.names else [FACADE]
            if lazy:
                problems.append(
                    f"{i.where}: {i.importer} imports {', '.join(lazy)} from the lazy facade "
                    f"{FACADE}, which loads it on first use; import it from its own module.")
            continue
        source, target = layer_of(i.importer, layers), layer_of(i.target, layers)
        if source is None or target is None or source == target or target.rank < source.rank:
            continue  # a module in no layer is reported by unplaced()
        direction = "upward" if target.rank > source.rank else "sideways, same rank"
        problems.append(
            f"{i.where}: {i.importer} ({source.name}, rank {source.rank}) imports {i.target} "
            f"({target.name}, rank {target.rank}): {direction}. Imports go into the same group "
            "or a lower rank.")
    return problems


def _components(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _shortest_circle(graph: Mapping[str, Collection[str]], start: str,
                     within: Collection[str]) -> list[str]:
    """``[start, ..., start]``: a shortest path from ``start`` back to itself inside ``within``."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt in within and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is on no circle")


def cycles(imports: Iterable[Import]) -> list[str]:
    """(b) One message per set of modules that import each other in a circle: a shortest
    circle as a module path, with the file and line of each of its imports."""
    first: dict[tuple[str, str], Import] = {}
    for i in imports:
        if i.importer != FACADE:
            first.setdefault((i.importer, i.target), i)
    graph: dict[str, set[str]] = {}
    for importer, target in first:
        graph.setdefault(importer, set()).add(target)
    problems = []
    for component in _components(graph):
        if len(component) < 2:
            continue
        circle = _shortest_circle(graph, component[0], set(component))
        lines = [f"circle: {' -> '.join(circle)}"]
        lines += [f"    {first[a, b].where}: {a} imports {b}" for a, b in pairwise(circle)]
        if len(component) > len(circle) - 1:
            lines.append(f"    ({len(component)} modules are tied in circles: "
                         f"{', '.join(component)})")
        problems.append("\n".join(lines))
    return problems


def long_modules(modules: Iterable[Module], limit: int = MAX_LINES) -> list[str]:
    """(d) Modules over ``limit`` lines, with their count."""
    return [f"{m.path}: {n} lines, over {limit}; split it, one concept per file."
            for m in sorted(modules, key=lambda m: m.path)
            if (n := len(m.source.splitlines())) > limit]


def check(modules: Mapping[str, Module], layers: Iterable[Layer] = LAYERS) -> list[str]:
    """Every rule on a package: facade, (c) placement, (a) layers, (b) circles, (d) length."""
    layers = tuple(layers)
    imports = [i for m in modules.values() for i in imports_of(m, modules)]
    facade = modules.get(FACADE)
    names = defined_names(facade) if facade else frozenset()
    return [*(facade_imports(facade, modules) if facade else []),
            *unplaced(modules, layers),
            *layer_violations(imports, names, layers),
            *cycles(imports),
            *long_modules(modules.values())]


# ------------------------------------------------------------ the checker on made-up packages

CLEAN = {
    "genevae/__init__.py": "import importlib\n__version__ = '0'\n\n"
                           "def __getattr__(name):\n    return importlib.import_module(name)\n",
    "genevae/errors.py": "class GenevaeError(Exception):\n    pass\n",
    "genevae/model/__init__.py": "from genevae.model.vae import VAE\n",
    "genevae/model/likelihoods.py": "import torch\nfrom genevae.errors import GenevaeError\n",
    "genevae/model/vae.py": "from . import likelihoods\nfrom .likelihoods import nb\n"
                            "from ..errors import GenevaeError\n",
    "genevae/train/__init__.py": "",
    "genevae/train/loop.py": "from genevae.model import vae\nfrom genevae.model import VAE\n",
    "genevae/cli.py": "from genevae import __version__\n\ndef main():\n"
                      "    from genevae.train.loop import fit\n",
}


def _with(files: dict[str, str]) -> dict[str, str]:
    """:data:`CLEAN` with files added or replaced."""
    return {**CLEAN, **files}


@pytest.mark.parametrize(("files", "expected"), [
    pytest.param(CLEAN, [], id="clean"),
    pytest.param(_with({"genevae/model/vae.py": "def fit():\n"
                                                "    from genevae.train.loop import fit\n"}),
                 ["src/genevae/model/vae.py:2: genevae.model.vae (model, rank 2) imports "
                  "genevae.train.loop (train, rank 3): upward",
                  "circle: genevae.model -> genevae.model.vae -> genevae.train.loop -> "
                  "genevae.model"],
                 id="upward-inside-a-function-and-its-circle"),
    pytest.param(_with({"genevae/data/io.py": "from genevae.history.history import History\n",
                        "genevae/history/history.py": ""}),
                 ["src/genevae/data/io.py:1: genevae.data.io (data, rank 1) imports "
                  "genevae.history.history (history, rank 1): sideways, same rank"],
                 id="sideways"),
    pytest.param(_with({"genevae/report/page.py": "x = 1\nfrom ..services import run\n",
                        "genevae/services/run.py": ""}),
                 ["src/genevae/report/page.py:2: genevae.report.page (report, rank 4) imports "
                  "genevae.services.run (services, rank 5): upward"],
                 id="upward-relative"),
    pytest.param(_with({"genevae/train/a.py": "from genevae.train.b import f\n",
                        "genevae/train/b.py": "from typing import TYPE_CHECKING\n"
                                          "if TYPE_CHECKING:\n    from .a import g\n"}),
                 ["circle: genevae.train.a -> genevae.train.b -> genevae.train.a\n"
                  "    src/genevae/train/a.py:1: genevae.train.a imports genevae.train.b\n"
                  "    src/genevae/train/b.py:3: genevae.train.b imports genevae.train.a"],
                 id="planted-circle-under-type-checking"),
    pytest.param(_with({"genevae/train/a.py": "import genevae.train.b\n",
                        "genevae/train/b.py": "import genevae.train.c\n",
                        "genevae/train/c.py": "from genevae.train import a\n"}),
                 ["circle: genevae.train.a -> genevae.train.b -> genevae.train.c -> "
                  "genevae.train.a"],
                 id="circle-of-three"),
    pytest.param(_with({"genevae/train/a.py": "import genevae.train.b\n",
                        "genevae/train/b.py": "import genevae.train.c\nimport genevae.train.a\n",
                        "genevae/train/c.py": "from genevae.train import a\n"}),
                 ["circle: genevae.train.a -> genevae.train.b -> genevae.train.a\n"
                  "    src/genevae/train/a.py:1: genevae.train.a imports genevae.train.b\n"
                  "    src/genevae/train/b.py:2: genevae.train.b imports genevae.train.a\n"
                  "    (3 modules are tied in circles: genevae.train.a, genevae.train.b, "
                  "genevae.train.c)"],
                 id="tangle-of-three"),
    pytest.param(_with({"genevae/__init__.py": "__version__ = '0'\n"
                                               "from genevae.cli import main\n"}),
                 ["src/genevae/__init__.py:2: the lazy facade genevae imports genevae.cli "
                  "statically"],
                 id="facade-static-import"),
    pytest.param(_with({"genevae/plot/curves.py": "from genevae import diagnose\n"}),
                 ["src/genevae/plot/curves.py:1: genevae.plot.curves imports diagnose from the "
                  "lazy facade genevae"],
                 id="lazy-name-from-the-facade"),
    pytest.param(_with({"genevae/workflow.py": "from genevae.errors import GenevaeError\n"}),
                 ["src/genevae/workflow.py: genevae.workflow is in no layer. A new top-level "
                  "module must be placed in LAYERS"],
                 id="module-in-no-layer"),
    pytest.param(_with({"genevae/diagnose/__init__.py": "", "genevae/diagnose/rules.py": ""}),
                 ["src/genevae/diagnose/ (2 modules): genevae.diagnose is in no layer"],
                 id="package-in-no-layer"),
    pytest.param(_with({"genevae/errors.py": "x = 1\n" * 451}),
                 ["src/genevae/errors.py: 451 lines, over 450"], id="451-lines"),
    pytest.param(_with({"genevae/errors.py": "x = 1\n" * 450}), [], id="450-lines"),
])
def test_checker_on_made_up_packages(files, expected):
    problems = check(make_modules(files))
    assert len(problems) == len(expected), "\n".join(problems)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


@pytest.mark.parametrize(("path", "statement", "expected"), [
    ("genevae/model/vae.py", "from genevae.model import likelihoods", "genevae.model.likelihoods"),
    ("genevae/model/vae.py", "from genevae.model import VAE", "genevae.model"),
    ("genevae/model/vae.py", "from genevae.model.likelihoods import nb",
     "genevae.model.likelihoods"),
    ("genevae/model/vae.py", "import genevae.model.likelihoods as lk", "genevae.model.likelihoods"),
    ("genevae/model/vae.py", "from . import likelihoods", "genevae.model.likelihoods"),
    ("genevae/model/vae.py", "from .likelihoods import nb", "genevae.model.likelihoods"),
    ("genevae/model/vae.py", "from .. import errors", "genevae.errors"),
    ("genevae/model/vae.py", "from ..errors import GenevaeError", "genevae.errors"),
    ("genevae/model/__init__.py", "from .vae import VAE", "genevae.model.vae"),
    ("genevae/model/__init__.py", "from . import vae", "genevae.model.vae"),
    ("genevae/model/vae.py", "from genevae import __version__", "genevae"),
    ("genevae/model/vae.py", "from genevae import errors", "genevae.errors"),
])
def test_checker_resolves_imports(path, statement, expected):
    known = {"genevae", "genevae.errors", "genevae.model", "genevae.model.vae",
             "genevae.model.likelihoods"}
    module = Module(module_name(PurePosixPath(path)), path, f"def f():\n    {statement}\n")
    assert [i.target for i in imports_of(module, known)] == [expected]


@pytest.mark.parametrize(("module", "layer"), [
    ("genevae.errors", "core"),
    ("genevae.configs", None),
    ("genevae.history.readers.text", "history"),
    ("genevae.diagnosis.rules.kl", "diagnosis"),
    ("genevae.diagnose.rules.kl", None),
    ("genevae.commands.train", "commands"),
    ("genevae.__main__", "__main__"),
])
def test_layer_of(module, layer):
    found = layer_of(module)
    assert (found.name if found else None) == layer


def test_longest_prefix_wins():
    layers = (Layer(2, "model", ("genevae.model",)), Layer(0, "kernel", ("genevae.model.kernel",)))
    assert layer_of("genevae.model.kernel.c", layers).name == "kernel"
    assert layer_of("genevae.model.vae", layers).name == "model"


# ------------------------------------------------------------------------- the real package


@cache
def _package() -> tuple[dict[str, Module], tuple[Import, ...]]:
    modules = make_modules({path.relative_to(SRC).as_posix(): path.read_text(encoding="utf-8")
                            for path in sorted((SRC / FACADE).rglob("*.py"))})
    imports = tuple(i for m in modules.values() for i in imports_of(m, modules))
    return modules, imports


def _fail_if(problems: list[str], rule: str) -> None:
    if problems:
        pytest.fail(f"{rule} ({len(problems)}):\n" + "\n".join(problems), pytrace=False)


def test_the_facade_imports_nothing_statically():
    modules, _ = _package()
    _fail_if(facade_imports(modules[FACADE], modules), "static imports in the lazy facade")


def test_every_module_is_in_a_layer():
    modules, _ = _package()
    _fail_if(unplaced(modules), "modules in no layer")


def test_imports_go_down_the_layers():
    modules, imports = _package()
    _fail_if(layer_violations(imports, defined_names(modules[FACADE])),
             "imports sideways or upward")


def test_no_import_circle():
    _, imports = _package()
    _fail_if(cycles(imports), "import circles")


def test_no_module_is_too_long():
    modules, _ = _package()
    _fail_if(long_modules(modules.values()), f"modules over {MAX_LINES} lines")
