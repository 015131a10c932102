"""A genome's network as a small SVG picture (no plotting library): nodes in layers, edges coloured by sign.

The live dashboard shows the champion this way; the picture shows structure and signs, never the genes as data.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from neatify.genome.genome import Genome
from neatify.genome.graph import evaluation_plan

_COLUMN = 110
_ROW = 40
_MARGIN = 30
_RADIUS = 9
_POSITIVE = "#2f6fb5"
_NEGATIVE = "#c4403a"
_FILL = {"input": "#e8e8e8", "hidden": "#ffffff", "output": "#ffe9a8"}


def network_columns(genome: Genome) -> list[list[int]]:
    """The node ids to draw, by column: the inputs, the hidden nodes in evaluation layers, the outputs."""
    inputs = list(range(genome.num_inputs))
    outputs = [n for n, gene in sorted(genome.nodes.items()) if gene.kind == "output"]
    plan = evaluation_plan(genome.enabled_edges(), inputs, outputs)
    hidden = [[n for n in layer if n not in outputs] for layer in plan.layers]
    return [inputs, *(layer for layer in hidden if layer), outputs]


def network_svg(genome: Genome, title: str = "") -> str:
    """An SVG document drawing ``genome``'s enabled connections among the nodes they reach (``network_columns``)."""
    columns = network_columns(genome)
    height = 2 * _MARGIN + _ROW * max(len(column) for column in columns)
    width = 2 * _MARGIN + _COLUMN * (len(columns) - 1)
    where = {node: (_MARGIN + _COLUMN * c, (height - _ROW * (len(column) - 1)) / 2 + _ROW * r)
             for c, column in enumerate(columns) for r, node in enumerate(column)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="9">',
             f"<title>{escape(title)}</title>"]
    for gene in genome.connections.values():
        if gene.enabled and gene.in_node in where and gene.out_node in where:
            parts.append(_edge(where[gene.in_node], where[gene.out_node], gene.weight))
    kinds = {node: gene.kind for node, gene in genome.nodes.items()}
    for node, (x, y) in where.items():
        fill = _FILL.get(kinds.get(node, "input"), _FILL["hidden"])
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_RADIUS}" fill="{fill}" stroke="#333"/>'
                     f'<text x="{x:.1f}" y="{y + 3:.1f}" text-anchor="middle">{node}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _edge(start: tuple[float, float], end: tuple[float, float], weight: float) -> str:
    """One connection: blue if its weight is positive, red if negative, wider the larger it is; a connection
    that runs backwards (recurrent) or to its own node is dashed."""
    colour = _POSITIVE if weight >= 0 else _NEGATIVE
    stroke = min(0.6 + abs(weight), 4.0)
    dash = ' stroke-dasharray="4 3"' if end[0] <= start[0] else ""
    (x1, y1), (x2, y2) = start, end
    if (x1, y1) == (x2, y2):  # a self-loop: a small arc above the node
        return (f'<path d="M{x1 - 5:.1f},{y1 - 7:.1f} C{x1 - 20:.1f},{y1 - 35:.1f} {x1 + 20:.1f},{y1 - 35:.1f} '
                f'{x1 + 5:.1f},{y1 - 7:.1f}" fill="none" stroke="{colour}" stroke-width="{stroke:.1f}"{dash}/>')
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{stroke:.1f}" stroke-opacity="0.8"{dash}/>')
