"""Small builders shared by the core tests."""

from __future__ import annotations

import random
import re
import textwrap
from pathlib import Path

from neatify import Genome
from neatify.genome.genes import ConnectionGene, NodeGene


def make_genome(num_inputs: int, num_outputs: int, nodes: list[tuple[int, float, str]],
                connections: list[tuple[int, int, int, float, bool]], genome_id: int = 0) -> Genome:
    """A genome from (id, bias, activation) nodes and (innovation, src, dst, weight, enabled) connections.

    Output node ids are num_inputs .. num_inputs+num_outputs-1; any other id is hidden.
    """
    genome = Genome(genome_id, num_inputs, num_outputs)
    outputs = set(genome.output_ids)
    for node_id, bias, activation in nodes:
        genome.nodes[node_id] = NodeGene(node_id, "output" if node_id in outputs else "hidden", bias, activation)
    for innovation, src, dst, weight, enabled in connections:
        genome.connections[innovation] = ConnectionGene(innovation, src, dst, weight, enabled)
    return genome


def random_genomes(count: int, cyclic_share: float, activations: list[str], seed: int = 0) -> list[Genome]:
    """Genomes of 3 inputs and 2 outputs with random structure: hidden node ids far apart, disabled genes,
    nodes that reach no output or have no inputs, innovations out of gene order, repeated node pairs.
    A share ``cyclic_share`` may have any edge (self-loops, cycles); the others only edges that go
    forward in a random node order."""
    rng = random.Random(seed)
    genomes = []
    for genome_id in range(count):
        hidden = rng.sample(range(5, 40), rng.randint(0, 6)) + rng.sample(range(10**6, 10**6 + 5), rng.randint(0, 2))
        order = [0, 1, 2] + rng.sample([3, 4] + hidden, 2 + len(hidden))  # feed-forward: edges go right
        nodes = [(node, rng.gauss(0.0, 1.0), rng.choice(activations)) for node in [3, 4] + hidden]
        cyclic = rng.random() < cyclic_share
        connections = []
        for innovation in rng.sample(range(500), rng.randint(0, 18)):
            src, dst = rng.choice(order), rng.choice(order[3:])
            if cyclic or order.index(src) < order.index(dst):
                connections.append((innovation, src, dst, rng.gauss(0.0, 1.5), rng.random() < 0.8))
        genomes.append(make_genome(3, 2, nodes, connections, genome_id))
    return genomes


_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def doc_blocks(doc: str) -> list[tuple[str, str]]:
    """Every fenced block of ``doc`` (``docs/usage.md``, ``README.md``...) as (language, text), in order;
    a block indented in a list item comes dedented."""
    text = (Path(__file__).resolve().parents[1] / doc).read_text()
    return [(m.group(2), textwrap.dedent(m.group(3))) for m in _FENCE.finditer(text)]


def doc_snippet(doc: str, marker: str, language: str = "python") -> str:
    """The block of ``doc`` in ``language`` that contains ``marker``, to run as written."""
    matches = [text for lang, text in doc_blocks(doc) if lang == language and marker in text]
    assert len(matches) == 1, f"{doc}: {len(matches)} {language} blocks contain {marker!r}"
    return matches[0]


def serial_and_parallel_fitness(fitness_fn, num_inputs: int, num_outputs: int, config, seed: int):
    """The first generation's fitness values evaluated in this process and by 2 worker processes."""
    from neatify import Population
    from neatify.backends.processes import ParallelEvaluator

    serial = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=seed)
    serial.run_generation(fitness_fn)
    parallel = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=seed)
    with ParallelEvaluator(fitness_fn, workers=2) as evaluator:
        parallel.run_generation(evaluator)
    return [g.fitness for g in serial.genomes], [g.fitness for g in parallel.genomes]
