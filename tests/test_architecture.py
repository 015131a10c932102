"""The architecture holds: the layer contracts of pyproject.toml (import-linter, as `make test` also runs them), and
no import circle anywhere in the package among the imports a module runs when it is imported."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
from importlinter import configuration
from importlinter.application import use_cases

from neatify.config import tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def lint_imports(config: Path) -> bool:
    """Whether the contracts of ``config`` are kept: what the ``lint-imports`` command runs, without its logging
    setup (which would silence every logger the other tests read) and without a cache."""
    configuration.configure()
    return use_cases.lint_imports(config_filename=str(config), cache_dir=None, no_logo=True)


def source(module: str) -> Path:
    """The file of ``module``, found without importing it or its packages (whose imports this test checks)."""
    root, *parts = module.split(".")
    path = Path(importlib.util.find_spec(root).origin).parent.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def import_statements(module: str) -> tuple[set[int], set[int]]:
    """Line numbers of ``module``'s import statements: (those that run when it is imported, those inside a
    function, which run only when it is called)."""
    tree = ast.parse(source(module).read_text())
    at_import, in_function = set(), set()

    def visit(node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (in_function if deferred else at_import).add(child.lineno)
            visit(child, deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return at_import, in_function


def import_time_graph(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` and the modules of it that it imports when imported (grimp's graph, imports under
    ``if TYPE_CHECKING`` and inside functions left out)."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    edges: dict[str, set[str]] = {module: set() for module in graph.modules}
    for importer in graph.modules:
        at_import, in_function = import_statements(importer)
        for imported in graph.find_modules_directly_imported_by(importer):
            lines = {detail["line_number"] for detail in graph.get_import_details(importer=importer, imported=imported)}
            assert lines <= at_import | in_function, f"{importer}: no import statement on line(s) {lines}"
            if lines & at_import:
                edges[importer].add(imported)
    return edges


def import_circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The sets of modules that import one another round a circle in ``import_time_graph``'s ``edges``: its strongly
    connected components of more than one module, or of one that imports itself (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in edges[module]:
            if imported not in index:
                connect(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while not component or module not in component:
                component.add(stack.pop())
            if len(component) > 1 or module in edges[module]:
                circles.append(component)

    for module in sorted(edges):
        if module not in index:
            connect(module)
    return circles


def test_the_layer_contracts_are_kept(capsys):
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    kept = lint_imports(PYPROJECT)
    report = capsys.readouterr().out
    assert kept, report
    assert f"Contracts: {len(contracts)} kept, 0 broken." in report and len(contracts) >= 4


def test_a_broken_layer_contract_fails_the_check(tmp_path, capsys):
    """The check above can fail: the population placed under the genome it imports is a broken contract."""
    config = tmp_path / "upside_down.toml"
    config.write_text('[tool.importlinter]\nroot_package = "neatify"\n\n[[tool.importlinter.contracts]]\n'
                      'name = "upside down"\ntype = "layers"\nlayers = ["neatify.genome", "neatify.population"]\n')
    assert not lint_imports(config)
    assert "upside down BROKEN" in capsys.readouterr().out


def test_no_module_of_neatify_is_in_an_import_circle():
    edges = import_time_graph("neatify")
    assert len(edges) > 50 and sum(map(len, edges.values())) > 100, "the graph holds the package"
    assert import_circles(edges) == []


LOOPY = {
    "__init__.py": "",
    "a.py": "from loopy import b\n",
    "b.py": "from loopy.c import f\n\n\ndef g():\n    from loopy import d\n",
    "c.py": "import loopy.a\n\n\ndef f():\n    pass\n",
    "d.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from loopy import b\n\n\n"
            "def h():\n    from loopy import b\n",
}
"""A package with one circle at import time (a -> b -> c -> a); b and d import each other only inside functions
or for type checkers."""


def test_the_circle_finder_finds_a_circle_at_import_time_and_no_other(tmp_path, monkeypatch):
    (tmp_path / "loopy").mkdir()
    for name, text in LOOPY.items():
        (tmp_path / "loopy" / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    edges = import_time_graph("loopy")
    assert import_circles(edges) == [{"loopy.a", "loopy.b", "loopy.c"}]
    assert edges["loopy.d"] == set() and edges["loopy.b"] == {"loopy.c"}
