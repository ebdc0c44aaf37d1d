"""The package's shape (issue #14): no import cycles, small modules, one error module, headers alone.

Read from the source with ``ast``: imports inside functions count, imports under
``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "celery_jobs_ext"
MAX_LINES = 600


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def runtime_imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports when it runs (at import time or in a function)."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for statement in branch.body
        for node in ast.walk(statement)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    imported = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            imported.add(module)
            imported.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {module for module in imported if module in known and module != name}


def test_no_import_cycle_inside_the_package() -> None:
    known = modules()
    graph = {name: runtime_imports(name, path, known) for name, path in known.items()}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []


def test_no_module_is_over_600_lines() -> None:
    long = {
        name: count
        for name, path in modules().items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_header_names_module_imports_nothing() -> None:
    tree = ast.parse((PACKAGE / "headers.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_every_error_class_is_defined_in_errors_py() -> None:
    errors = {
        node.name
        for node in ast.parse((PACKAGE / "errors.py").read_text()).body
        if isinstance(node, ast.ClassDef)
    }
    elsewhere = []
    for name, path in modules().items():
        if name == "celery_jobs_ext.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
                if bases & errors:
                    elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []


def test_architecture_md_lists_every_package_and_module() -> None:
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    start = text.index("```\ncelery_jobs_ext/")
    tree = text[start : text.index("```", start + 3)]
    unlisted = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        names = [f"{package}/" for package in relative.parts[:-1]]
        if path.name != "__init__.py":
            names.append(path.stem)
        unlisted += [str(relative) for name in names if not re.search(rf"(?<![\w.]){re.escape(name)}", tree)]
    assert unlisted == []
