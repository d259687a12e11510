"""Imports flow one way, ``segmodels`` <- ``sweeps`` <- ``analysis`` <- ``deploy`` <- ``tune_app``
<- ``bench``, never in a circle; ``segsweep_predict`` stands alone (numpy, Pillow, onnxruntime);
and ``segmodels`` is three wings with faces (docs/style.md, "Imports"):

- ``segmodels.data`` and ``segmodels.models`` import of segmodels only the ground (``errors``,
  ``classes``, ``colors``) and never each other; ``segmodels.data`` never imports torch;
- nothing in segmodels imports ``segmodels.training`` but the package face and ``__main__``;
- code outside a wing imports from the wing's face (``segmodels.data``), never from one of its
  inner modules (``segmodels.data.dataset``).

The source is read with ``ast``, nothing is imported, so an import inside a function or under
``if TYPE_CHECKING:`` counts like one at the top of a module: each is a dependency a reader must
keep in mind, and a cycle of them is one moved line away from an ImportError. A package's
``__init__.py`` importing its own submodules to hand their names on is not counted, and a name
imported from a package is counted as an import of the submodule that defines it.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("segmodels", "sweeps", "analysis", "deploy", "tune_app", "bench")  # each may import
# those before it
WINGS = ("segmodels.data", "segmodels.models", "segmodels.training")
GROUND = ("segmodels.errors", "segmodels.classes", "segmodels.colors")


@dataclass(frozen=True)
class Import:
    importer: str  # module names, e.g. sweeps.runner
    target: str
    path: str  # the importer's file, relative to the root
    line: int
    text: str  # the import statement, on one line
    context: str  # "", " (in a function)", " (under if TYPE_CHECKING)"
    via: str = ""  # the module the statement names (a face, where the target is a wing's inner)

    def __str__(self) -> str:
        return (f"{self.path}:{self.line}: {self.importer} imports {self.target}: "
                f"{self.text}{self.context}")


@dataclass(frozen=True)
class _Statement:
    base: str  # the module named in the statement, relative imports resolved
    names: tuple[tuple[str, str], ...]  # (name, bound as) of a from-import; () for import X
    line: int
    text: str
    context: str


def _top(module: str) -> str:
    return module.split(".")[0]


def module_files(root: Path) -> dict[str, Path]:
    """Module name -> file for every module of the layers under ``root``."""
    files = {}
    for layer in LAYERS:
        if (root / f"{layer}.py").is_file():
            files[layer] = root / f"{layer}.py"
        for path in sorted((root / layer).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


class _Collector(ast.NodeVisitor):
    """Every import statement of one file, wherever it sits, with where it sits."""

    def __init__(self, module: str, is_package: bool, source: str):
        self.package = module if is_package else module.rpartition(".")[0]
        self.source = source
        self.context: list[str] = []
        self.found: list[_Statement] = []

    def _add(self, node: ast.stmt, base: str, names: tuple[tuple[str, str], ...]) -> None:
        text = " ".join((ast.get_source_segment(self.source, node) or "").split())
        context = f" ({self.context[-1]})" if self.context else ""
        self.found.append(_Statement(base, names, node.lineno, text, context))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name, ())

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # from . import x, from ..a import b
            package = self.package
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        self._add(node, base, tuple((a.name, a.asname or a.name) for a in node.names))

    def _nested(self, node: ast.AST, label: str) -> None:
        self.context.append(label)
        self.generic_visit(node)
        self.context.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._nested(node, "in a function")

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        if test in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            self._nested(node, "under if TYPE_CHECKING")
        else:
            self.generic_visit(node)


def _resolve(base: str, name: str | None, files: dict[str, Path],
             exports: dict[str, dict[str, str]]) -> str:
    """The module that ``from base import name`` (or ``import base``) depends on."""
    if name is not None and f"{base}.{name}" in files:
        return f"{base}.{name}"
    if name is not None and name in exports.get(base, {}):
        return exports[base][name]
    parts = base.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in files:
            return ".".join(parts[:n])
    return base  # a module that does not exist: still an import of its layer


def find_imports(root: Path) -> list[Import]:
    """Every import of one module of the layers by another (self-imports left out)."""
    files = module_files(root)
    statements = {}
    for module, path in files.items():
        source = path.read_text()
        collector = _Collector(module, path.name == "__init__.py", source)
        collector.visit(ast.parse(source, str(path)))
        statements[module] = [s for s in collector.found if _top(s.base) in LAYERS]
    # what each package hands on: bound name -> the module it comes from
    exports = {
        package: {bound: _resolve(s.base, name, files, {})
                  for s in statements[package] for name, bound in s.names}
        for package, path in files.items() if path.name == "__init__.py"
    }
    imports = []
    for module, found in statements.items():
        is_package = files[module].name == "__init__.py"
        for s in found:
            names = [name for name, _ in s.names] or [None]
            targets = {_resolve(s.base, name, files, exports) for name in names}
            for target in sorted(targets):
                handed_on = is_package and target.startswith(module + ".")
                if target != module and not handed_on:
                    imports.append(Import(module, target, str(files[module].relative_to(root)),
                                          s.line, s.text, s.context, s.base))
    return imports


def layer_violations(imports: list[Import]) -> list[Import]:
    """Imports of a layer above the importer's own."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return [i for i in imports if rank[_top(i.target)] > rank[_top(i.importer)]]


def wing_of(module: str) -> str | None:
    return next((w for w in WINGS if module == w or module.startswith(w + ".")), None)


def wing_violations(imports: list[Import]) -> list[str]:
    """Imports that break the wings' rules (the module docstring), each with the rule."""
    bad = []
    for imp in imports:
        own, target, via = wing_of(imp.importer), wing_of(imp.target), wing_of(imp.via)
        if via is not None and via != own and imp.via != via:
            bad.append(f"{imp}: import from the face {via}, not its inner module")
        if (own in ("segmodels.data", "segmodels.models") and _top(imp.target) == "segmodels"
                and target != own and imp.target not in GROUND):
            bad.append(f"{imp}: {own} imports only the ground ({', '.join(GROUND)})")
        if (target == "segmodels.training" and _top(imp.importer) == "segmodels"
                and own != target and imp.importer not in ("segmodels", "segmodels.__main__")):
            bad.append(f"{imp}: only the package face and __main__ import the training wing")
    return bad


def third_party_imports(root: Path, wing: str, packages: tuple[str, ...]) -> list[str]:
    """Every import of one of ``packages`` by a module of ``wing``, wherever it sits."""
    found = []
    for module, path in module_files(root).items():
        if wing_of(module) != wing:
            continue
        source = path.read_text()
        collector = _Collector(module, path.name == "__init__.py", source)
        collector.visit(ast.parse(source, str(path)))
        found += [f"{path.relative_to(root)}:{s.line}: {s.text}{s.context}"
                  for s in collector.found if _top(s.base) in packages]
    return found


def _reachable(start: str, graph: dict[str, dict[str, Import]]) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for target in graph.get(stack.pop(), {}):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _shortest_cycle(start: str, graph: dict[str, dict[str, Import]]) -> list[Import]:
    """The imports of a shortest path from ``start`` back to itself (one must exist)."""
    came_by: dict[str, Import] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target, imp in sorted(graph.get(module, {}).items()):
            if target == start:
                path = [imp]
                while path[0].importer != start:
                    path.insert(0, came_by[path[0].importer])
                return path
            if target not in came_by:
                came_by[target] = imp
                queue.append(target)
    raise ValueError(f"{start} is on no cycle")


def import_cycles(imports: list[Import]) -> list[list[Import]]:
    """One cycle for each group of modules that import each other, directly or not."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, {}).setdefault(imp.target, imp)
    reach = {module: _reachable(module, graph) for module in graph}
    cycles, done = [], set()
    for module in sorted(graph):
        if module in reach[module] and module not in done:
            done |= {m for m in reach[module] if module in reach.get(m, ())}
            cycles.append(_shortest_cycle(module, graph))
    return cycles


def _explain(cycle: list[Import]) -> str:
    loop = " -> ".join([cycle[0].importer, *(imp.target for imp in cycle)])
    return f"import cycle {loop}:\n" + "\n".join(f"  {imp}" for imp in cycle)


def test_each_layer_imports_only_the_layers_below_it():
    bad = layer_violations(find_imports(ROOT))
    assert not bad, (
        f"imports must flow {' <- '.join(LAYERS)}; move the shared code down a layer "
        "(docs/style.md, Imports):\n" + "\n".join(f"  {imp}" for imp in bad))


def test_segmodels_is_three_wings_with_faces():
    bad = wing_violations(find_imports(ROOT))
    assert not bad, ("segmodels' wings (docs/style.md, Imports):\n"
                     + "\n".join(f"  {b}" for b in bad))


def test_the_data_wing_never_imports_torch():
    found = third_party_imports(ROOT, "segmodels.data", ("torch", "torchvision"))
    assert not found, "segmodels.data turns files into numpy arrays, without torch:\n" + \
        "\n".join(f"  {f}" for f in found)


def test_no_import_cycle_between_modules():
    cycles = import_cycles(find_imports(ROOT))
    assert not cycles, "\n".join(map(_explain, cycles))


def test_lazy_type_only_and_relative_imports_count(tmp_path):
    """The checks catch what hides from a plain read: imports in functions, under
    TYPE_CHECKING, relative ones, names taken from a package; hand-on imports do not count."""
    files = {
        "segmodels/__init__.py": "from segmodels.a import A\nfrom segmodels import c\n",
        "segmodels/a.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                          "    from segmodels.b import B\nA = 1\n",
        "segmodels/b.py": "def g():\n    from . import A\n\n\ndef h():\n    import sweeps\n",
        "segmodels/c.py": "import segmodels\n",
        "sweeps/__init__.py": "",
        "sweeps/x.py": "import os\nfrom segmodels import A\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    imports = find_imports(tmp_path)
    assert [str(i) for i in layer_violations(imports)] == [
        "segmodels/b.py:6: segmodels.b imports sweeps: import sweeps (in a function)"]
    (cycle,) = import_cycles(imports)
    assert [(i.importer, i.target, i.line, i.context) for i in cycle] == [
        ("segmodels.a", "segmodels.b", 4, " (under if TYPE_CHECKING)"),
        ("segmodels.b", "segmodels.a", 2, " (in a function)"),
    ]
    assert ("sweeps.x", "segmodels.a") in {(i.importer, i.target) for i in imports}


def test_each_wing_rule_catches_a_planted_violation(tmp_path):
    """The rules above fail on a violation of each, wherever it hides; what they allow passes."""
    files = {
        "segmodels/__init__.py": "from segmodels.training import T\n",  # the face: allowed
        "segmodels/__main__.py": "from segmodels.training import T\n",  # allowed
        "segmodels/errors.py": "E = 1\n",
        "segmodels/metrics.py": "def f():\n    from segmodels.training import T\n",
        "segmodels/data/__init__.py": "from segmodels.data.a import A\n",
        "segmodels/data/a.py": "from segmodels.errors import E\n"
                               "from segmodels.models import B\nA = 1\n",
        "segmodels/data/c.py": "def load():\n    import torch\n",
        "segmodels/models/__init__.py": "from segmodels.models.b import B\n",
        "segmodels/models/b.py": "from segmodels.training.t import T\nB = 1\n",
        "segmodels/training/__init__.py": "from segmodels.training.t import T\n",
        "segmodels/training/t.py": "from segmodels.data import A\n"
                                   "from segmodels.models.b import B\nT = 1\n",
        "sweeps/__init__.py": "",
        "sweeps/x.py": "from segmodels.data import A\nfrom segmodels.data.a import A as A2\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    bad = wing_violations(find_imports(tmp_path))
    assert sorted(b.split(": ", 1)[0] + " | " + b.rsplit(": ", 1)[1] for b in bad) == sorted([
        "segmodels/data/a.py:2 | segmodels.data imports only the ground "
        f"({', '.join(GROUND)})",
        "segmodels/metrics.py:2 | only the package face and __main__ import the training wing",
        "segmodels/models/b.py:1 | import from the face segmodels.training, not its inner module",
        "segmodels/models/b.py:1 | only the package face and __main__ import the training wing",
        "segmodels/models/b.py:1 | segmodels.models imports only the ground "
        f"({', '.join(GROUND)})",
        "segmodels/training/t.py:2 | import from the face segmodels.models, not its inner module",
        "sweeps/x.py:2 | import from the face segmodels.data, not its inner module",
    ])
    assert third_party_imports(tmp_path, "segmodels.data", ("torch",)) == [
        "segmodels/data/c.py:2: import torch (in a function)"]


PREDICTOR_MAY_IMPORT = {"numpy", "PIL", "onnxruntime", "segsweep_predict"}


def test_the_predictor_stands_alone():
    """A deployment installs numpy, Pillow and onnxruntime: segsweep_predict imports nothing
    else outside the standard library (no torch, nothing of segsweep's other packages)."""
    import sys

    found = []
    for path in sorted((ROOT / "segsweep_predict").rglob("*.py")):
        source = path.read_text()
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        collector = _Collector(module, path.name == "__init__.py", source)
        collector.visit(ast.parse(source, str(path)))
        found += [f"{path.relative_to(ROOT)}:{s.line}: {s.text}" for s in collector.found
                  if _top(s.base) not in PREDICTOR_MAY_IMPORT | set(sys.stdlib_module_names)]
    assert not found, "segsweep_predict must run with numpy, Pillow and onnxruntime only:\n" \
        + "\n".join(found)

