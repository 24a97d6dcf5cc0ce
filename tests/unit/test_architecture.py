"""The shape of include/: what `lint-imports` cannot say in its contracts.

The layers themselves are import-linter contracts (pyproject.toml, run by `make test`); these tests
add the two rules a contract cannot state for packages that do not exist yet: no module imports its
way round in a circle (lazy imports inside functions count), and the machinery imports no problem
package, whatever it is called.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
MACHINERY = "include.mlpipeline"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("include", include_external_packages=False, exclude_type_checking_imports=False)


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Every import cycle among ``modules`` (each found once, from its smallest module)."""
    found, seen = [], set()
    for start in sorted(modules):
        stack = [(start, [start])]
        while stack:
            module, path = stack.pop()
            for imported in graph.find_modules_directly_imported_by(module):
                if imported == start:
                    key = frozenset(path)
                    if key not in seen:
                        seen.add(key)
                        found.append([*path, start])
                elif imported in modules and imported not in path and imported > start:
                    stack.append((imported, [*path, imported]))
    return found


def test_no_import_cycle_in_the_machinery(graph: grimp.ImportGraph) -> None:
    modules = {m for m in graph.modules if m.startswith(MACHINERY)}
    assert _cycles(graph, modules) == []


def test_the_machinery_imports_no_problem_package(graph: grimp.ImportGraph) -> None:
    problems = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1 and not m.startswith(MACHINERY)}
    assert problems, "expected at least one problem package under include/"
    imports = [
        (module, imported)
        for module in graph.modules
        if module.startswith(MACHINERY)
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith("include.") and not imported.startswith(MACHINERY)
    ]
    assert imports == []


def test_no_module_is_over_the_size_a_reader_takes_in() -> None:
    """About 400 lines: a module does one job (the house rule); 430 leaves room for a docstring."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for folder in ("include", "scripts")
        for path in (ROOT / folder).rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > 430} == {}


def test_every_package_under_include_is_in_git() -> None:
    """A folder of modules without a tracked ``__init__.py`` still imports here (as a namespace package)
    but is a different package in a clean clone, and an ignore rule can hide it (``data/`` once did)."""
    import subprocess

    tracked = set(
        subprocess.run(
            ["git", "ls-files", "include"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    folders = {str(Path(name).parent) for name in tracked if name.endswith(".py")}
    assert sorted(f"{folder}/__init__.py" for folder in folders if f"{folder}/__init__.py" not in tracked) == []
