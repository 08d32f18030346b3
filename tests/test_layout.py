"""Two promises of the layout: every port is declared in ``reconciler/ports.py``, and no
class name is defined twice in the package (a reader never has to ask which one)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"


def classes() -> list[tuple[str, ast.ClassDef]]:
    """Every class defined anywhere in the package, with its module's path."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        rel = str(path.relative_to(PACKAGE.parent))
        found += [(rel, node) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    return found


def is_protocol(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(b, ast.Name) and b.id == "Protocol")
        or (isinstance(b, ast.Attribute) and b.attr == "Protocol")
        for b in node.bases
    )


def test_every_port_is_declared_in_ports_py() -> None:
    protocols = {f"{path}:{node.name}" for path, node in classes() if is_protocol(node)}
    elsewhere = sorted(p for p in protocols if not p.startswith("reconciler/ports.py:"))
    assert elsewhere == []
    assert "reconciler/ports.py:ClusterReader" in protocols  # the scan sees them at all


def test_no_class_name_is_defined_twice() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path, node in classes():
        where[node.name].append(path)
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
