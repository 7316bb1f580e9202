"""Dependency ordering: deterministic order, subsets, waves, dependents, cycles."""

from __future__ import annotations

import random

import pytest

from dome_tasks.manifest.graph import CycleError, Graph


def graph(deps: dict[str, list[str]]) -> Graph:
    return Graph(list(deps), deps)


def test_dependencies_come_first_ties_keep_manifest_order():
    g = graph({"api": ["constellation", "silo"], "constellation": ["silo"], "silo": [], "web": []})
    assert g.order() == ["silo", "constellation", "api", "web"]


def test_independent_nodes_keep_manifest_order():
    g = graph({"c": [], "a": [], "b": []})
    assert g.order() == ["c", "a", "b"]


def test_order_is_deterministic_and_valid_on_a_random_dag():
    rng = random.Random(7)
    nodes = [f"s{i}" for i in range(200)]
    deps = {n: rng.sample(nodes[:i], min(i, rng.randint(0, 3))) for i, n in enumerate(nodes)}
    shuffled = dict(sorted(deps.items(), key=lambda _: rng.random()))
    g = Graph(list(shuffled), shuffled)
    order = g.order()
    position = {n: i for i, n in enumerate(order)}
    assert all(position[d] < position[n] for n, ds in deps.items() for d in ds)
    assert Graph(list(shuffled), shuffled).order() == order


def test_subset_keeps_the_global_order():
    g = graph({"api": ["constellation"], "constellation": ["silo"], "silo": []})
    assert g.order_of(["api", "silo"]) == ["silo", "api"]
    assert g.order_of([]) == []


def test_waves():
    g = graph(
        {"silo": [], "auth": [], "constellation": ["silo"], "api": ["constellation", "auth"],
         "web": ["auth"]}
    )
    assert g.waves() == [["silo", "auth"], ["constellation", "web"], ["api"]]


def test_waves_of_a_subset_respect_dependencies_through_left_out_nodes():
    g = graph({"silo": [], "constellation": ["silo"], "api": ["constellation"], "web": []})
    assert g.waves(["api", "silo", "web"]) == [["silo", "web"], ["api"]]
    assert g.waves(["api"]) == [["api"]]


def test_dependents():
    g = graph({"silo": [], "constellation": ["silo"], "api": ["constellation", "silo"]})
    assert g.dependents("silo") == ("constellation", "api")
    assert g.dependents("constellation") == ("api",)
    assert g.dependents("api") == ()
    g = graph({"a": [], "b": ["a"], "c": ["b"]})
    assert g.dependents("a") == ("b",)
    assert g.dependents("a", transitive=True) == ("b", "c")


def test_self_edges_and_unknown_nodes_are_ignored():
    g = graph({"a": ["a", "zzz"], "b": ["a", "a"]})
    assert g.deps == {"a": (), "b": ("a",)}
    assert g.order() == ["a", "b"]


def test_cycle_is_named():
    g = graph({"dome-api": ["constellation"], "constellation": ["dome-api"], "silo": []})
    with pytest.raises(CycleError) as caught:
        g.order()
    assert caught.value.cycles == [("dome-api", "constellation", "dome-api")]
    assert str(caught.value) == "dome-api -> constellation -> dome-api"


def test_shortest_cycle_from_the_earliest_node():
    g = graph({"a": ["b"], "b": ["c", "a"], "c": ["a"], "d": ["a"]})
    assert g.cycles() == [("a", "b", "a"), ("c", "a", "b", "c")]
    with pytest.raises(CycleError) as caught:
        g.order()
    assert caught.value.cycles[0] == ("a", "b", "a")


def test_separate_cycles_are_all_reported():
    g = graph({"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"], "e": ["a"]})
    with pytest.raises(CycleError) as caught:
        g.order()
    assert caught.value.cycles == [("a", "b", "a"), ("c", "d", "c")]
