"""The image dependency graph: cycles, requirements, and what becomes ready when."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Graph = Mapping[str, Sequence[str]]  # image -> images it depends on


def find_cycle(deps: Graph) -> list[str] | None:
    """A dependency cycle as a path ``[a, b, ..., a]``, or None when the graph is a DAG."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in deps.get(node, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def requirements(deps: Graph, wanted: Iterable[str]) -> set[str]:
    """``wanted`` and everything it depends on, transitively."""
    seen: set[str] = set()
    stack = list(wanted)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(deps.get(node, ()))
    return seen


def dependents(deps: Graph, failed: str) -> set[str]:
    """Every node that needs ``failed``, transitively (not including it)."""
    return {node for node in deps if node != failed and failed in requirements(deps, deps[node])}


def topological_order(deps: Graph) -> list[str]:
    """Nodes so that each comes after its dependencies; ties keep the mapping's order."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(deps)
    while remaining:
        ready = [n for n in remaining if all(d in placed for d in deps[n])]
        if not ready:
            raise ValueError(f"dependency cycle among {remaining}")
        for node in ready:
            order.append(node)
            placed.add(node)
        remaining = [n for n in remaining if n not in placed]
    return order
