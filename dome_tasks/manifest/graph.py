"""Dependency ordering: deterministic topological order, parallel waves, cycle finding."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence


class CycleError(ValueError):
    """The graph has cycles; ``cycles`` lists each as ``(a, b, …, a)``."""

    def __init__(self, cycles: list[tuple[str, ...]]):
        super().__init__("; ".join(" -> ".join(c) for c in cycles))
        self.cycles = cycles


class Graph:
    """Nodes in a fixed (manifest) order; ``deps[n]`` are the nodes ``n`` needs first.

    Self-edges and edges to unknown nodes are ignored.
    """

    def __init__(self, nodes: Sequence[str], deps: Mapping[str, Iterable[str]]):
        self.nodes = tuple(nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.deps: dict[str, tuple[str, ...]] = {
            n: tuple(dict.fromkeys(d for d in deps.get(n, ()) if d in self.index and d != n))
            for n in self.nodes
        }
        users: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes:
            for dep in self.deps[node]:
                users[dep].append(node)
        self.users = {n: tuple(u) for n, u in users.items()}
        self._order: list[str] | None = None
        self._levels: dict[str, int] | None = None

    def order(self) -> list[str]:
        """Every node after its dependencies; ties go to the earlier node. Raises CycleError."""
        if self._order is None:
            pending = {n: len(self.deps[n]) for n in self.nodes}
            ready = [self.index[n] for n in self.nodes if not pending[n]]
            heapq.heapify(ready)
            order: list[str] = []
            while ready:
                node = self.nodes[heapq.heappop(ready)]
                order.append(node)
                for user in self.users[node]:
                    pending[user] -= 1
                    if not pending[user]:
                        heapq.heappush(ready, self.index[user])
            if len(order) != len(self.nodes):
                raise CycleError(self.cycles(set(self.nodes) - set(order)))
            self._order = order
        return list(self._order)

    def cycles(self, candidates: set[str] | None = None) -> list[tuple[str, ...]]:
        """One shortest cycle through each node not yet covered, earliest node first."""
        pool = set(self.nodes) if candidates is None else candidates
        covered: set[str] = set()
        found: list[tuple[str, ...]] = []
        for start in sorted(pool, key=self.index.__getitem__):
            if start in covered:
                continue
            path = self._path_back(start, pool)
            if path:
                found.append((start, *path))
                covered.update(path)
        return found

    def _path_back(self, start: str, pool: set[str]) -> tuple[str, ...] | None:
        """Shortest path start -> … -> start within ``pool`` (excluding the first node)."""
        previous: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for dep in self.deps[node]:
                if dep not in pool:
                    continue
                if dep == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = previous[node]
                    return tuple(reversed(path))
                if dep not in previous:
                    previous[dep] = node
                    queue.append(dep)
        return None

    def order_of(self, subset: Iterable[str] | None = None) -> list[str]:
        """The global order restricted to ``subset`` (all nodes when None)."""
        order = self.order()
        if subset is None:
            return order
        wanted = set(subset)
        return [n for n in order if n in wanted]

    def waves(self, subset: Iterable[str] | None = None) -> list[list[str]]:
        """Groups deployable in parallel: each node's dependencies (direct or through nodes
        outside ``subset``) are in earlier groups. Within a group, manifest order."""
        order = self.order()
        wanted = set(order if subset is None else subset)
        level: dict[str, int] = {}
        for node in order:
            level[node] = max(
                (level[d] + (1 if d in wanted else 0) for d in self.deps[node]), default=0
            )
        waves: list[list[str]] = []
        for node in sorted((n for n in order if n in wanted), key=self.index.__getitem__):
            while len(waves) <= level[node]:
                waves.append([])
            waves[level[node]].append(node)
        return waves

    def dependents(self, node: str, *, transitive: bool = False) -> tuple[str, ...]:
        """Nodes that need ``node`` (directly, or also indirectly), in manifest order."""
        if not transitive:
            return self.users[node]
        seen: set[str] = set()
        queue = deque(self.users[node])
        while queue:
            user = queue.popleft()
            if user not in seen:
                seen.add(user)
                queue.extend(self.users[user])
        return tuple(sorted(seen, key=self.index.__getitem__))
