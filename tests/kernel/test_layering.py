"""The layering rule, checked on every import of every module (function-local ones too).

- The kernel (``kordon``) imports no role and not the composition layer.
- A role (``collector``, ``alerts``, ``api``, ``simulators``, ``bridges``, ``dashboards``)
  imports the kernel only: never another role, never the composition layer.
- The composition layer (``composition``, the top floor) is the only code that wires roles
  together, and the only code allowed to use ``importlib`` or ``__import__`` (it uses neither:
  plain imports).
- No module reaches itself again through its imports (no import circle), counting imports
  inside functions and under ``TYPE_CHECKING``: a circle hidden from the interpreter is still
  two files a reader cannot understand apart.

The rule is read from the source with :mod:`ast`, so a module that imports a role inside a
function, under ``TYPE_CHECKING`` or through ``importlib`` is caught without running it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "kordon"
APP = "composition"
ROLES = ("collector", "alerts", "api", "simulators", "bridges", "dashboards")
# Not shipped: they exercise everything, so they may import everything.
TOOLS = ("tests", "bench", "testkit")
DYNAMIC_IMPORT = ("importlib", "__import__")


@dataclass(frozen=True, slots=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.imported}: {self.why}"


def layer_of(module: str) -> str | None:
    """``app``, ``kernel``, a role's name, or None for the standard library and third parties."""
    top = module.split(".")[0]
    if top == APP:
        return "app"
    if top == KERNEL:
        return "kernel"
    if top in ROLES:
        return top
    return None


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module a source imports, with its line: ``import a.b``, ``from a import b``
    (``a.b`` too, since ``b`` may be a module), relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            yield node.lineno, source
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{source}.{alias.name}"
        elif isinstance(node, ast.Name) and node.id == "__import__":
            yield node.lineno, "__import__"


def violations(source: str, module: str, is_package: bool = False) -> list[Violation]:
    """What breaks the layering rule in ``source``, the text of ``module``."""
    here = layer_of(module)
    found: dict[tuple[int, str], Violation] = {}  # one per line and reason
    tree = ast.parse(source, filename=module)
    for line, target in imported_modules(tree, module, is_package):
        if here != "app" and target.split(".")[0] in DYNAMIC_IMPORT:
            why = "dynamic import outside composition"
            found.setdefault((line, why), Violation(module, line, target, why))
            continue
        there = layer_of(target)
        if there is None or there == here or here == "app":
            continue
        if there == "app":
            why = "only the composition layer's own modules and tools import composition"
        elif here == "kernel":
            why = "the kernel imports no role"
        elif there != "kernel":
            why = "a role never imports another role"
        else:
            continue
        found.setdefault((line, why), Violation(module, line, target, why))
    return list(found.values())


def shipped_modules() -> Iterator[tuple[str, Path]]:
    for top in (KERNEL, *ROLES, APP):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def test_every_top_level_package_has_a_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages, ROOT
    unknown = packages - {KERNEL, APP, *ROLES, *TOOLS}
    assert not unknown, f"add {sorted(unknown)} to the layering rule (kernel, role or tool)"


def test_kernel_and_roles_keep_to_their_layers() -> None:
    modules = list(shipped_modules())
    assert len(modules) > 50 and any(name.startswith(APP + ".") for name, _ in modules)
    found = [
        str(v)
        for name, path in modules
        for v in violations(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
    ]
    assert not found, "layering broken:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("kordon.fleet", "def f():\n    from simulators.library import FLEETS\n", "no role"),
        ("kordon.config", "import api.role\n", "no role"),
        ("kordon", "import composition\n", "composition layer"),
        ("kordon.model.topics", "from composition import cli\n", "composition layer"),
        ("dashboards.cli", "from alerts.config import rules\n", "another role"),
        ("alerts.replay", "from simulators import engine\n", "another role"),
        ("api.scenarios", "if TYPE_CHECKING:\n    import simulators\n", "another role"),
        ("collector.role", "from composition.roles import build_role\n", "composition layer"),
        ("api.scenarios", "import importlib.util\n", "dynamic import"),
        ("kordon.roles", "from importlib import import_module\n", "dynamic import"),
        ("simulators", "def f(n):\n    return __import__(n)\n", "dynamic import"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(module: str, source: str, why: str) -> None:
    found = violations(source, module, is_package=module in ("kordon", "simulators"))
    assert found and why in found[0].why, found


def test_the_checker_lets_allowed_imports_through() -> None:
    source = (
        "import json\nimport numpy as np\nfrom kordon.fleet import Fleet\n"
        "from alerts.engine import Engine\nfrom . import rules\n"
    )
    assert violations(source, "alerts.replay") == []
    app = "from alerts.verify import table\nfrom simulators.engine import ScenarioRun\n"
    assert violations(app, "composition.verify") == []


def import_graph(modules: list[tuple[str, Path]]) -> dict[str, set[str]]:
    """Each shipped module and the shipped modules it imports (``from a import b`` names the
    module ``a.b`` where that is a module, else ``a``)."""
    names = {name for name, _ in modules}
    graph: dict[str, set[str]] = {}
    for name, path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = set()
        for _, target in imported_modules(tree, name, path.name == "__init__.py"):
            if target in names and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle() -> None:
    """A package's ``__init__`` re-exporting its modules is the one allowed shape: the edge from
    a module to its own package's ``__init__`` is left out, since a module importing a sibling
    through its package is an import of the sibling."""
    modules = list(shipped_modules())
    graph = import_graph(modules)
    packages = {name for name, path in modules if path.name == "__init__.py"}
    for name, edges in graph.items():
        own = {p for p in packages if name.startswith(p + ".")}
        edges -= own
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
