"""Plots: files are written, reopen as images of the expected size, and SVG is real SVG."""

from __future__ import annotations

import sys
from xml.etree import ElementTree

import pytest

from neatify import ConnectionGene, EvolutionConfig, Population
from neatify.reporting.reporters import StatisticsReporter

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from neatify.reporting.plot import (  # noqa: E402
    draw_genome, fitness_figure, genome_figure, genome_positions, plot_fitness, plot_species, species_figure,
)

CONFIG = EvolutionConfig(population_size=30, prob_add_node=0.4, prob_add_connection=0.4, prob_toggle_enable=0.05)


@pytest.fixture(scope="module")
def run():
    stats = StatisticsReporter()
    pop = Population(num_inputs=3, num_outputs=2, config=CONFIG, seed=5)
    pop.add_reporter(stats)
    pop.run(lambda gs: [setattr(g, "fitness", float(sum(g.size()))) for g in gs], 6)
    return pop, stats


def assert_png(path, width, height):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[:2] == (height, width)
    assert image.std() > 0  # something was drawn


def test_fitness_and_species_plots(run, tmp_path):
    pop, stats = run
    assert_png(plot_fitness(pop.history, tmp_path / "fitness.png"), 700, 400)
    assert_png(plot_fitness(stats, tmp_path / "fitness2.png"), 700, 400)
    assert_png(plot_species(stats, tmp_path / "species.png"), 700, 400)
    svg = ElementTree.parse(plot_species(stats, tmp_path / "species.svg")).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"


def test_draw_genome_with_hidden_disabled_and_recurrent_edges(run, tmp_path):
    genome = max(run[0].genomes, key=lambda g: g.size()[0]).copy(99)
    assert genome.size()[0] >= 1
    first = next(iter(genome.connections.values()))
    first.enabled = False
    out = genome.output_ids[0]
    genome.connections[10**6] = ConnectionGene(10**6, out, out, -1.5, True)
    positions = genome_positions(genome)
    assert set(positions) == set(genome.input_ids) | set(genome.nodes)
    assert all(positions[i][0] == 0 for i in genome.input_ids)
    assert len({positions[o][0] for o in genome.output_ids}) == 1
    assert max(x for x, _ in positions.values()) == positions[out][0]
    path = draw_genome(genome, tmp_path / "genome.png", node_names={0: "x", out: "y"})
    image = imread(path)
    assert image.shape[0] >= 300 and image.std() > 0
    assert "<svg" in draw_genome(genome, tmp_path / "genome.svg", show_disabled=False).read_text()


def test_missing_matplotlib_gives_a_clear_error(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"plot needs matplotlib.figure: pip install '\.\[plot\]'"):
        plot_fitness(run[0].history, tmp_path / "x.png")


def test_long_node_names_fit_in_the_figure(run):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    genome = run[0].best_genome
    hidden = next((n for n in genome.nodes if n not in genome.output_ids), None)
    names = {i: f"a rather long input name {i}" for i in genome.input_ids}
    names.update({o: f"an equally long output name {o}" for o in genome.output_ids})
    if hidden is not None:
        names[hidden] = "hidden feature with a long name"
    fig = genome_figure(genome, node_names=names)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    labels = [t for t in fig.axes[0].texts if t.get_text() in names.values()]
    assert len(labels) == len(names)
    for label in labels:
        extent = label.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1, \
            label.get_text()


def test_generations_are_labelled_with_whole_numbers():
    """A run of three generations: matplotlib alone would tick 0.25, 0.5, ...; a generation is a whole number."""
    stats = StatisticsReporter()
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=1)
    pop.add_reporter(stats)
    pop.run(lambda gs: [setattr(g, "fitness", float(g.id % 7)) for g in gs], 3)
    for figure in (fitness_figure(pop.history), fitness_figure(stats), species_figure(stats)):
        figure.canvas.draw()  # ticks as they are drawn
        ticks = [label.get_text() for label in figure.axes[0].get_xticklabels() if label.get_text()]
        assert ticks and all(text.lstrip("−-").isdigit() for text in ticks), ticks
