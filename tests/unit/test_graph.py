"""stagegate.graph: cycles, topological order, requirements and dependents."""

from __future__ import annotations

import itertools

import pytest
from stagegate.graph import dependents, find_cycle, requirements, topological_order

DIAMOND = {"base": [], "left": ["base"], "right": ["base"], "top": ["left", "right"], "lone": []}


def assert_closed_path(deps: dict[str, list[str]], cycle: list[str]) -> None:
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for node, dep in itertools.pairwise(cycle):
        assert dep in deps[node]


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["a"]}, ["a", "a"]),
        ({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"ok": [], "a": ["ok", "b"], "b": ["ok", "a"]}, ["a", "b", "a"]),
    ],
)
def test_find_cycle_returns_a_closed_path(deps: dict[str, list[str]], expected: list[str]) -> None:
    cycle = find_cycle(deps)

    assert cycle == expected
    assert_closed_path(deps, cycle)


@pytest.mark.parametrize(
    "deps",
    [
        {},
        {"a": []},
        DIAMOND,
        {"a": ["external"], "b": ["a", "external"]},
        {"a": ["b"], "b": ["c"], "c": []},
    ],
)
def test_find_cycle_is_none_for_a_dag(deps: dict[str, list[str]]) -> None:
    assert find_cycle(deps) is None


def test_topological_order_puts_dependencies_first() -> None:
    order = topological_order({"top": ["left", "right"], "right": ["base"], "left": ["base"], "base": []})

    assert order == ["base", "right", "left", "top"]


def test_topological_order_keeps_mapping_order_for_ties() -> None:
    assert topological_order({"c": [], "a": [], "b": []}) == ["c", "a", "b"]
    assert topological_order({"app": ["base"], "z": [], "base": []}) == ["z", "base", "app"]


def test_topological_order_of_the_diamond() -> None:
    order = topological_order(DIAMOND)

    assert sorted(order) == sorted(DIAMOND)
    for node, deps in DIAMOND.items():
        assert all(order.index(dep) < order.index(node) for dep in deps)


def test_topological_order_rejects_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"ok": [], "a": ["b"], "b": ["a"]})


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (["top"], {"top", "left", "right", "base"}),
        (["left"], {"left", "base"}),
        (["base"], {"base"}),
        (["left", "lone"], {"left", "base", "lone"}),
        ([], set()),
    ],
)
def test_requirements_are_transitive(wanted: list[str], expected: set[str]) -> None:
    assert requirements(DIAMOND, wanted) == expected


def test_requirements_of_a_chain() -> None:
    assert requirements({"a": ["b"], "b": ["c"], "c": ["d"], "d": []}, ["a"]) == {"a", "b", "c", "d"}


def test_requirements_tolerate_nodes_outside_the_graph() -> None:
    assert requirements({"a": ["external"]}, ["a"]) == {"a", "external"}


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        ("base", {"left", "right", "top"}),
        ("left", {"top"}),
        ("top", set()),
        ("lone", set()),
    ],
)
def test_dependents_are_transitive(failed: str, expected: set[str]) -> None:
    assert dependents(DIAMOND, failed) == expected


def test_dependents_of_a_chain() -> None:
    assert dependents({"a": ["b"], "b": ["c"], "c": ["d"], "d": []}, "d") == {"a", "b", "c"}
