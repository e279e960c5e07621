"""The layout's import rules, read from the source with ``ast`` (no module is imported).

- nothing imports the old top-level names ``harness`` or ``tasks``;
- nothing under harness/ imports a task package (tasks are found by load_plugins);
- Ray is imported only in run/ (executors, ray_executor, ray_runtime, minimal_agent); MLflow only in track/;
- score/metrics.py imports nothing of restorebench but the imaging kit, and score/ nothing but
  restorebench.core and restorebench.imaging;
- a task imports only the public face (``restorebench``), the shared kits ``restorebench.imaging``
  and ``restorebench.neural``, and itself;
- each wing imports only the wings before it on the data path (see WINGS);
- no import cycles between restorebench's modules (imports inside functions count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import REPO

ROOTS = {"harness": "restorebench", "tasks": "restorebench.tasks"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    parts[0] = ROOTS[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(".".join(parts).split("."))


def _modules() -> dict[str, Path]:
    found = {}
    for top in ROOTS:
        for path in sorted((REPO / top).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports (absolute names; ``from a import b`` gives a.b when a.b is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
            out += [
                (f"{node.module}.{a.name}", node.lineno) for a in node.names if f"{node.module}.{a.name}" in MODULES
            ]
    return out


def _walk_runtime(tree: ast.AST):
    """Every node, except those under ``if TYPE_CHECKING:`` (imports for type hints only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(rule) -> list[str]:
    bad = []
    for module, path in MODULES.items():
        for name, line in _imports(path):
            problem = rule(module, name)
            if problem:
                bad.append(f"{path.relative_to(REPO)}:{line}: {module} imports {name} ({problem})")
    return bad


def test_the_modules_are_found():
    assert "restorebench.core.registry" in MODULES and "restorebench.tasks.denoise" in MODULES
    assert len(MODULES) > 40


def test_no_old_top_level_names():
    def rule(module, name):
        return "use restorebench" if name.split(".")[0] in ("harness", "tasks") else None

    bad = _violations(rule)
    for path in sorted((REPO / "tests").rglob("*.py")):
        for name, line in _imports(path):
            if name.split(".")[0] in ("harness", "tasks"):
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert bad == []


def test_the_engine_never_imports_a_task():
    def rule(module, name):
        if not _inside(module, "restorebench.tasks") and _inside(name, "restorebench.tasks"):
            return "the engine knows no task; load_plugins() finds them"
        return None

    assert _violations(rule) == []


def test_no_module_is_imported_by_a_string_the_rules_cannot_see():
    """A module named in a string (``importlib.import_module("restorebench.data.folder")``) is an
    import these rules cannot check. Allowed: the public face's lazy names (harness/__init__.py)
    and the tasks package that load_plugins scans (the engine finds tasks, never names one)."""
    bad = []
    for path in MODULES.values():
        if path == REPO / "harness" / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
            if text and "." in text and text in MODULES and text != "restorebench.tasks":
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: names module {text} in a string")
    assert bad == []


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        (
            "ray",
            (
                "restorebench.run.executors",
                "restorebench.run.ray_executor",
                "restorebench.run.ray_runtime",
                "restorebench.run.minimal_agent",
            ),
        ),
        ("mlflow", ("restorebench.track",)),
    ],
)
def test_heavy_services_stay_in_their_wing(library, allowed):
    def rule(module, name):
        if _inside(name, library) and not any(_inside(module, a) for a in allowed):
            return f"{library} belongs in {', '.join(allowed)}"
        return None

    assert _violations(rule) == []


def test_metrics_are_pure_and_score_depends_only_on_core():
    def rule(module, name):
        if not _inside(name, "restorebench"):
            return None
        if module == "restorebench.score.metrics" and not _inside(name, "restorebench.imaging"):
            return "metric functions import nothing of the engine but the imaging kit"
        if _inside(module, "restorebench.score") and not any(
            _inside(name, f"restorebench.{wing}") for wing in ("core", "imaging", "score")
        ):
            return "score/ may import only restorebench.core and restorebench.imaging"
        return None

    assert _violations(rule) == []


def test_tasks_import_only_the_public_face_and_the_kits():
    def rule(module, name):
        if not _inside(module, "restorebench.tasks") or not _inside(name, "restorebench"):
            return None
        own = ".".join(module.split(".")[:3])
        kits = ("restorebench.neural", "restorebench.imaging")
        ok = name == "restorebench" or any(_inside(name, kit) for kit in kits) or _inside(name, own)
        ok = ok or name == "restorebench.score.metrics"  # pure metric functions, for a task's own metrics
        return None if ok else "a task imports restorebench (the plugin API), the kits (imaging, neural) and itself"

    assert _violations(rule) == []


# Which wings each wing may import (besides itself); the flow runs left to right.
WINGS = {
    "core": set(),
    "imaging": {"core"},
    "data": {"core"},
    "score": {"core", "imaging"},
    "neural": {"core", "imaging"},
    "results": {"core"},
    "report": {"core", "results"},
    "track": {"core", "report", "results"},
    "run": {"core", "data", "score", "neural", "results", "report", "track"},
    "commands": {"core", "data", "run", "neural", "results", "track", "report"},
}


def test_each_wing_imports_only_the_wings_before_it():
    def rule(module, name):
        parts, target = module.split("."), name.split(".")
        if len(parts) < 2 or parts[1] not in WINGS or target[0] != "restorebench" or len(target) < 2:
            return None
        wing, other = parts[1], target[1]
        if other == wing or other in WINGS[wing] or (other not in WINGS and other != "tasks"):
            return None  # restorebench.cli and the face are not wings
        return f"{wing}/ may import {', '.join(sorted(WINGS[wing])) or 'nothing else'}"

    assert _violations(rule) == []


def test_no_import_cycles():
    graph = {m: {n for n, _ in _imports(p) if n in MODULES and n != m} for m, p in MODULES.items()}
    # A package's __init__ importing its own children is not a cycle worth reporting.
    for m in graph:
        graph[m] = {n for n in graph[m] if not (n.startswith(m + ".") and MODULES[m].name == "__init__.py")}
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n) :] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert cycles == []
