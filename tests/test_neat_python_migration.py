"""Coming from neat-python: its own XOR example config, read by ``from_neat_python``, evolves as its authors expect."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from neatify import EvolutionConfig, Population
from neatify.config.neat_python import DISTANCE_SCALE
from xor_task import xor_fitness

XOR_EXAMPLE = Path(__file__).resolve().parents[1] / "benchmarks" / "neat_python_xor_example.ini"
"""The values of neat-python 2.0's examples/xor/config-feedforward."""


def example_config() -> EvolutionConfig:
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        config = EvolutionConfig.from_neat_python(XOR_EXAMPLE)
    (message,) = [str(w.message) for w in warned]
    assert "unknown key" not in message, message  # every key of neat-python's own example is known
    return config


def test_the_threshold_is_carried_onto_neatifys_distance_scale():
    config = example_config()
    assert config.compatibility_threshold == pytest.approx(3.0 / DISTANCE_SCALE)
    assert config.normalize_min_genes == 1 and config.target_species == 0  # divided by N as neat-python, fixed
    assert (config.c1, config.c2, config.c3) == (1.0, 1.0, 0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_example_keeps_a_handful_of_species_as_in_neat_python(seed):
    """neat-python keeps about 3 species of 150 on this config; read as-is, NEATify's scale split the
    population into 70 or more by generation 10 (and solved 4 seeds of 10)."""
    pop = Population(num_inputs=2, num_outputs=1, config=example_config(), seed=seed)
    pop.run(xor_fitness, 10)
    assert max(h.num_species for h in pop.history) <= 15, [h.num_species for h in pop.history]


def test_the_example_solves_xor():
    champion = Population(num_inputs=2, num_outputs=1, config=example_config(), seed=2).run(xor_fitness, 300, 3.9)
    assert champion.fitness >= 3.9
