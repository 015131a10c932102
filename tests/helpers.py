"""Small builders shared by the core tests."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from neatify import Genome
from neatify.genes import ConnectionGene, NodeGene


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
    from neatify.parallel import ParallelEvaluator

    serial = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=seed)
    serial.run_generation(fitness_fn)
    parallel = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=seed)
    with ParallelEvaluator(fitness_fn, workers=2) as evaluator:
        parallel.run_generation(evaluator)
    return [g.fitness for g in serial.genomes], [g.fitness for g in parallel.genomes]
