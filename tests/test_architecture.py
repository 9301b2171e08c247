"""The package's shape: no module imports another that imports it back (function-local and
type-checking imports included), read statically from the source."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import researchgym

SRC = Path(researchgym.__file__).resolve().parent.parent
TASK_MATERIAL = Path(researchgym.__file__).resolve().parent / "tasks" / "builtin"


def module_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its body)."""
    modules = {}
    for path in (SRC / "researchgym").rglob("*.py"):
        if TASK_MATERIAL in path.parents:
            continue  # task files run in sandboxes, not as part of the package
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_one_that_imports_it_back():
    graph = module_graph()
    assert "researchgym.runs.runner" in graph and "researchgym.tasks.spec" in graph  # the graph was read
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_code_outside_the_sandbox_package_branches_on_a_providers_name():
    offenders = []
    for path in (SRC / "researchgym").rglob("*.py"):
        if TASK_MATERIAL in path.parents or (SRC / "researchgym" / "sandbox") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            named = [s for s in sides if "sandbox" in (getattr(s, "id", "") or getattr(s, "attr", "")).lower()]
            literal = [s for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)]
            if named and literal:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


def test_a_third_party_sandbox_gets_the_same_evaluation(tmp_path):
    import researchgym

    env = researchgym.make("battleOfSexes", sandbox="custom_sandbox:RenamedBwrap", trajectory_dir=tmp_path)
    env.reset(seed=0)
    observation, *_ = env.step("validate")
    env.close()
    assert "Validation score" in observation, observation
