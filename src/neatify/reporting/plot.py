"""Plots of a run and drawings of genomes, saved as PNG or SVG (by the file suffix).

Needs matplotlib (``pip install '.[plot]'`` from a checkout). Figures are built without pyplot, so no GUI
backend is ever touched and nothing global changes; rasters are rendered by Agg.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neatify.genome.genome import Genome
from neatify.network.network import NetworkLayout
from neatify.runtime.extras import require

if TYPE_CHECKING:
    from neatify.objectives.elites import EliteArchive
    from neatify.population import GenerationStats
    from neatify.reporting.reporters import StatisticsReporter

logger = logging.getLogger("neatify.reporting.plot")

POSITIVE, NEGATIVE, DISABLED = "tab:green", "tab:red", "0.75"
NODE_COLOURS = {"input": "lightskyblue", "hidden": "white", "output": "orange"}


def _figure(width: float, height: float) -> Any:
    figure = require("matplotlib.figure", "neatify.reporting.plot", "plot")
    return figure.Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=100)
    logger.info("saved plot %s", path)
    return path


def _generation_axis(ax: Any) -> None:
    """Label the x axis "generation", with whole-number ticks only (a short run would get 0.25, 0.5, ...)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_fitness(history: StatisticsReporter | Sequence[GenerationStats], path: str | Path,
                 title: str = "Fitness") -> Path:
    """Best and mean fitness per generation, from ``population.history`` or a StatisticsReporter."""
    return _save(fitness_figure(history, title), path)


def fitness_figure(history: StatisticsReporter | Sequence[GenerationStats], title: str = "Fitness") -> Any:
    """The matplotlib ``Figure`` that ``plot_fitness`` saves."""
    if hasattr(history, "column"):
        generations, best, mean = (history.column(n) for n in ("generation", "best_fitness", "mean_fitness"))
    else:
        generations = [h.generation for h in history]
        best, mean = [h.best_fitness for h in history], [h.mean_fitness for h in history]
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    ax.plot(generations, best, label="best", color="tab:blue")
    ax.plot(generations, mean, label="mean", color="tab:gray", linestyle="--")
    ax.set(ylabel="fitness", title=title)
    _generation_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_species(statistics: StatisticsReporter, path: str | Path, title: str = "Species") -> Path:
    """Stacked species sizes per generation, from a StatisticsReporter."""
    return _save(species_figure(statistics, title), path)


def species_figure(statistics: StatisticsReporter, title: str = "Species") -> Any:
    """The matplotlib ``Figure`` that ``plot_species`` saves."""
    generations, ids, sizes = statistics.species_sizes()
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    if ids:
        ax.stackplot(generations, sizes, labels=[f"species {i}" for i in ids], edgecolor="white", linewidth=0.3)
    ax.set(ylabel="genomes", title=title)
    _generation_axis(ax)
    if 0 < len(ids) <= 12:
        ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_elites(archive: EliteArchive, path: str | Path, dims: tuple[int, int] = (0, 1),
                title: str = "Archive of elites") -> Path:
    """The archive of elites over behaviour dimensions ``dims``, each cell coloured by its elite's fitness (the best
    of the cells the other dimensions fold onto it), empty cells blank; one-dimensional behaviours as a strip."""
    import numpy as np

    across = dims[0]
    up = dims[1] if len(archive.bounds) > 1 else None
    grid = np.full((archive.cells, 1 if up is None else archive.cells), np.nan)
    for cell, elite in archive.elites.items():
        key = (cell[across], 0 if up is None else cell[up])
        grid[key] = np.fmax(grid[key], elite.fitness)
    fig = _figure(6, 5)
    ax = fig.add_subplot()
    low_y, high_y = (0.0, 1.0) if up is None else archive.bounds[up]
    mesh = ax.pcolormesh(np.linspace(*archive.bounds[across], archive.cells + 1),
                         np.linspace(low_y, high_y, grid.shape[1] + 1), grid.T, cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="fitness")
    ax.set(xlabel=f"behaviour[{across}]", ylabel="" if up is None else f"behaviour[{up}]",
           title=f"{title}: {len(archive.elites)} of {archive.cells ** len(archive.bounds)} cells")
    return _save(fig, path)


def genome_positions(genome: Genome) -> dict[int, tuple[float, float]]:
    """Drawing coordinates of every node: inputs left, outputs right, hidden nodes by layer."""
    layout = NetworkLayout.from_genome(genome)
    outputs = set(genome.output_ids)
    column: dict[int, int] = {n: 0 for n in genome.input_ids}
    for k, (start, end) in enumerate(layout.layer_bounds):
        for node_id in layout.node_ids[start:end]:
            if node_id not in outputs:
                column[node_id] = k + 1
    last = max(column.values(), default=0) + 1
    unused = sorted(n for n in genome.nodes if n not in column and n not in outputs)
    for node_id in unused:  # hidden nodes that reach no output: a column of their own
        column[node_id] = last
    for node_id in outputs:
        column[node_id] = last + (1 if unused else 0)
    by_column: dict[int, list[int]] = {}
    for node_id in sorted(column):
        by_column.setdefault(column[node_id], []).append(node_id)
    positions = {}
    for x, nodes in by_column.items():
        for i, node_id in enumerate(nodes):
            positions[node_id] = (float(x), (len(nodes) - 1) / 2 - i)
    return positions


def draw_genome(genome: Genome, path: str | Path, node_names: Mapping[int, str] | None = None,
                show_disabled: bool = True, title: str | None = None) -> Path:
    """Draw a genome's network: green positive / red negative weights (width ~ |weight|), disabled dashed."""
    return _save(genome_figure(genome, node_names, show_disabled, title), path)


def genome_figure(genome: Genome, node_names: Mapping[int, str] | None = None, show_disabled: bool = True,
                  title: str | None = None) -> Any:
    """The matplotlib Figure ``draw_genome`` saves. Node names sit left of the inputs, right of the
    outputs and under hidden nodes, and the layout makes room for them however long they are."""
    positions = genome_positions(genome)
    width = max(x for x, _ in positions.values()) + 1
    height = max(len([p for p in positions.values() if p[0] == x]) for x, _ in positions.values())
    fig = _figure(max(4.0, 1.6 * width), max(3.0, 0.8 * height))
    ax = fig.add_subplot()
    ax.set_axis_off()
    if title is None:
        title = f"genome {genome.id}" + ("" if genome.fitness is None else f" (fitness {genome.fitness:.4g})")
    ax.set_title(title)
    heaviest = max((abs(c.weight) for c in genome.connections.values()), default=1.0) or 1.0
    for conn in genome.connections.values():
        if not conn.enabled and not show_disabled:
            continue
        _draw_edge(ax, positions[conn.in_node], positions[conn.out_node], conn.weight / heaviest, conn.enabled)
    names = node_names or {}
    for node_id, (x, y) in positions.items():
        kind = genome.nodes[node_id].kind if node_id in genome.nodes else "input"
        ax.scatter([x], [y], s=500, c=NODE_COLOURS[kind], edgecolors="black", zorder=3)
        if node_id not in names:  # the id fits inside the node
            ax.annotate(str(node_id), (x, y), ha="center", va="center", fontsize=8, zorder=4)
            continue
        offset, ha, va = {"input": ((-14, 0), "right", "center"), "output": ((14, 0), "left", "center")}.get(
            kind, ((0, -14), "center", "top"))
        ax.annotate(names[node_id], (x, y), xytext=offset, textcoords="offset points", ha=ha, va=va, fontsize=8,
                    zorder=4, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    ax.margins(0.15)
    return fig


def _draw_edge(ax: Any, src: tuple[float, float], dst: tuple[float, float], strength: float, enabled: bool) -> None:
    """One connection; ``strength`` is the weight scaled to [-1, 1]."""
    colour = (POSITIVE if strength >= 0 else NEGATIVE) if enabled else DISABLED
    style = dict(color=colour, linewidth=0.5 + 2.5 * abs(strength) if enabled else 0.8,
                 linestyle="-" if enabled else "--", zorder=1 if enabled else 0)
    if src == dst:  # self-loop: a small circle above the node
        from matplotlib.patches import Circle

        ax.add_patch(Circle((src[0], src[1] + 0.2), 0.15, fill=False, **style))
        return
    backward = dst[0] <= src[0]
    ax.annotate("", xy=dst, xytext=src, arrowprops=dict(
        arrowstyle="-|>", shrinkA=12, shrinkB=12, connectionstyle=f"arc3,rad={0.35 if backward else 0.0}", **style))
