"""The service map of a system file as a PNG: who calls whom, through which queues, on which components.

Layered left to right by the flow of requests and messages: entry points first, then what they call,
queues between their producers and consumers, backing components last. Within a layer, nodes sit near
the nodes that lead to them, which keeps crossings few for the graphs systems have (tens of nodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vigil.system.model import System

STYLE = {  # node kind -> (face colour, marker)
    "service": ("#4c78a8", "o"),
    "external": ("#9d9d9d", "o"),
    "queue": ("#f58518", "D"),
    "component": ("#54a24b", "s"),
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # calls | publishes | consumes | uses | shares
    label: str = ""


def nodes_and_edges(system: System) -> tuple[dict[str, str], list[Edge]]:
    """Every node with its kind, and every edge: the map's content, independent of drawing."""
    nodes = {s.name: "external" if s.external else "service" for s in system.services}
    nodes |= {f"queue:{q.name}": "queue" for q in system.queues}
    nodes |= {c.name: "component" for c in system.components}
    edges = [Edge(s.name, callee, "calls") for s in system.services for callee in s.calls]
    edges += [Edge(s.name, c, "uses") for s in system.services for c in s.uses]
    for q in system.queues:
        edges += [Edge(p, f"queue:{q.name}", "publishes") for p in q.producers]
        edges += [Edge(f"queue:{q.name}", c, "consumes") for c in q.consumers]
        if q.component is not None:
            edges.append(Edge(f"queue:{q.name}", q.component, "uses"))
    for r in system.resources:
        if r.owner is not None:
            edges += [Edge(user, r.owner, "shares", r.name) for user in r.used_by if user != r.owner]
    return nodes, edges


def layers(nodes: dict[str, str], edges: list[Edge]) -> dict[str, int]:
    """Longest path from an entry point along calls and messages; components one layer past the rest."""
    flow = [e for e in edges if e.kind in ("calls", "publishes", "consumes")]
    depth = {name: 0 for name, kind in nodes.items() if kind != "component"}
    for _ in range(len(depth)):  # a bounded relaxation: call cycles cannot loop forever
        changed = False
        for e in flow:
            if depth[e.target] < depth[e.source] + 1:
                depth[e.target] = depth[e.source] + 1
                changed = True
        if not changed:
            break
    last = max(depth.values(), default=-1) + 1
    return depth | {name: last for name, kind in nodes.items() if kind == "component"}


def positions(nodes: dict[str, str], edges: list[Edge]) -> dict[str, tuple[float, float]]:
    layer_of = layers(nodes, edges)
    before: dict[str, list[str]] = {}
    for e in edges:
        before.setdefault(e.target, []).append(e.source)
    placed: dict[str, tuple[float, float]] = {}
    for layer in sorted(set(layer_of.values())):
        members = [n for n in nodes if layer_of[n] == layer]

        def barycentre(name: str) -> float:
            ys = [placed[p][1] for p in before.get(name, []) if p in placed]
            return sum(ys) / len(ys) if ys else 0.0

        members.sort(key=barycentre, reverse=True)  # y falls as i grows
        for i, name in enumerate(members):
            placed[name] = (float(layer), (len(members) - 1) / 2 - i)
    return placed


def draw(system: System, path: Path, *, title: str | None = None) -> Path:
    """Write the service map of ``system`` to ``path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    nodes, edges = nodes_and_edges(system)
    at = positions(nodes, edges)
    width = 3.0 + 2.6 * (max(x for x, _ in at.values()) + 1)
    height = 2.0 + 1.1 * max(sum(1 for p in at.values() if p[0] == x) for x, _ in at.values())
    figure, axes = plt.subplots(figsize=(width, height))
    line = {"calls": ("-", "#333333"), "uses": (":", "#54a24b"), "publishes": ("--", "#f58518")}
    line |= {"consumes": ("--", "#f58518"), "shares": ("-.", "#b279a2")}
    for e in edges:
        style, colour = line[e.kind]
        (x0, y0), (x1, y1) = at[e.source], at[e.target]
        bend = 0.25 if e.kind == "shares" else 0.0  # shared tables often run along a call edge
        axes.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "linestyle": style,
                "color": colour,
                "shrinkA": 14,
                "shrinkB": 14,
                "connectionstyle": f"arc3,rad={bend}",
            },
        )
        if e.label:
            axes.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, e.label, fontsize=7, color=colour, ha="center")
    slos = {s.name: [slo.name for slo in system.slos if slo.service == s.name] for s in system.services}
    for name, kind in nodes.items():
        colour, marker = STYLE[kind]
        x, y = at[name]
        axes.scatter([x], [y], s=420, c=colour, marker=marker, zorder=3, edgecolors="white")
        text = name.removeprefix("queue:")
        if kind == "component":
            text += f"\n({next(c.kind for c in system.components if c.name == name)})"
        if slos.get(name):
            text += "\nSLO: " + ", ".join(slos[name])
        axes.text(x, y - 0.28, text, ha="center", va="top", fontsize=8, zorder=4)
    legend = [("calls", "-", "#333333"), ("messages", "--", "#f58518"), ("uses", ":", "#54a24b")]
    legend.append(("shares a table with", "-.", "#b279a2"))
    for label, style, colour in legend:
        axes.plot([], [], linestyle=style, color=colour, label=label)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=8, frameon=False)
    axes.set_title(title or f"{system.name}: service map")
    axes.margins(0.12, 0.2)
    axes.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
