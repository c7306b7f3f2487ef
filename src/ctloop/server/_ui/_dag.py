"""The step graph of a run, laid out on the server as SVG: a step's column is the length
of the longest path of steps that feed it, its row its place in that column.

>>> graph = layout([("load", "succeeded"), ("fit", "cached")], [("load", "fit")])
>>> [(n.name, n.column, n.row) for n in graph.nodes]
[('load', 0, 0), ('fit', 1, 0)]
>>> graph.width, graph.height
(392, 76)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Dag", "Edge", "Node", "layout"]

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 160, 44, 40, 16, 16


@dataclass(frozen=True)
class Node:
    """One step: where it sits (``x``, ``y`` of its top-left corner) and how it ended."""

    name: str
    status: str
    column: int
    row: int

    @property
    def x(self) -> int:
        return MARGIN + self.column * (NODE_W + GAP_X)

    @property
    def y(self) -> int:
        return MARGIN + self.row * (NODE_H + GAP_Y)


@dataclass(frozen=True)
class Edge:
    """An artifact one step wrote and another read, as an SVG path."""

    source: str
    target: str
    path: str


@dataclass(frozen=True)
class Dag:
    """The laid-out graph: nodes, edges and the drawing's size."""

    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def layout(steps: Sequence[tuple[str, str]], edges: Iterable[tuple[str, str]]) -> Dag:
    """Lay out ``steps`` (name, status, in run order) joined by ``edges`` (from, to)."""
    names = [name for name, _ in steps]
    feeds: dict[str, set[str]] = {name: set() for name in names}
    for source, target in edges:
        if source in feeds and target in feeds and source != target:
            feeds[target].add(source)
    column: dict[str, int] = {}
    for name in _in_order(names, feeds):
        column[name] = 1 + max((column[s] for s in feeds[name] if s in column), default=-1)
    rows: dict[int, int] = {}
    nodes = []
    for name, status in steps:
        col = column[name]
        nodes.append(Node(name, status, col, rows.get(col, 0)))
        rows[col] = rows.get(col, 0) + 1
    placed = {n.name: n for n in nodes}
    drawn = [
        Edge(s, t, _curve(placed[s], placed[t]))
        for t in names
        for s in sorted(feeds[t], key=names.index)
    ]
    columns, most_rows = max(column.values(), default=0) + 1, max(rows.values(), default=1)
    width = 2 * MARGIN + columns * NODE_W + (columns - 1) * GAP_X
    height = 2 * MARGIN + most_rows * NODE_H + (most_rows - 1) * GAP_Y
    return Dag(nodes, drawn, width, height)


def _in_order(names: list[str], feeds: dict[str, set[str]]) -> list[str]:
    """The steps with every step after those that feed it (run order breaks ties; a
    cycle, which a DAG cannot have, is cut where it closes)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: frozenset[str]) -> None:
        if name in seen or name in path:
            return
        for source in sorted(feeds[name], key=names.index):
            visit(source, path | {name})
        seen.add(name)
        done.append(name)

    for name in names:
        visit(name, frozenset())
    return done


def _curve(source: Node, target: Node) -> str:
    x1, y1 = source.x + NODE_W, source.y + NODE_H // 2
    x2, y2 = target.x, target.y + NODE_H // 2
    bend = max(GAP_X // 2, (x2 - x1) // 2)
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
