"""The double-pole benchmark's choice of which champion to test, as in the NEAT paper's source."""

import sys
from pathlib import Path

from helpers import make_genome
from neatify.speciation.species import Species

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from double_pole import (  # noqa: E402
    SpeciesChampions, gomez_solver, gruau_fitness, network_key)


def _species(sid: int, *fitnesses: float) -> Species:
    members = [make_genome(1, 1, [(1, 0.0, "tanh")], [(0, 0, 1, 1.0, True)], genome_id=10 * sid + i)
               for i in range(len(fitnesses))]
    for genome, fitness in zip(members, fitnesses):
        genome.fitness = fitness
    return Species(sid, members[0], 0, members)


def test_each_generation_tests_the_fittest_unchecked_species_champion():
    champions = SpeciesChampions()
    a, b, c = _species(1, 1.0, 5.0), _species(2, 3.0), _species(3, 1.0, 0.5)
    picks = [champions.pick([a, b, c]).id for _ in range(4)]
    assert picks == [11, 20, 30, 11], "best species first, then the next unchecked; all checked: the best"
    b.members[0].fitness = 4.0  # B beats its record: unchecked again, ahead of the checked A
    assert champions.pick([a, b, c]).id == 20
    d = _species(4, 0.1)  # a new species is unchecked
    assert champions.pick([a, b, c, d]).id == 40
    assert champions.pick([a, b, c, d]).id == 11


def _scored(fitness: float, weight: float, genome_id: int):
    genome = make_genome(1, 1, [(1, 0.0, "neat_sigmoid")], [(0, 0, 1, weight, True)], genome_id=genome_id)
    genome.fitness = fitness
    return genome


def test_the_gomez_protocol_takes_the_fittest_balanced_genome_that_generalises():
    weak, strong, failing = _scored(2.0, 0.1, 1), _scored(3.0, 0.2, 2), _scored(5.0, 0.3, 3)
    verdicts = {network_key(weak, False): True, network_key(strong, False): True, network_key(failing, False): False}
    assert gomez_solver([weak, failing, strong], verdicts) is strong
    assert gomez_solver([failing], verdicts) is None and gomez_solver([], verdicts) is None


def test_a_network_that_does_nothing_does_not_balance_and_is_no_gomez_candidate():
    still = make_genome(4, 1, [(4, 0.0, "neat_sigmoid")], [(0, 0, 4, 0.0, True)], genome_id=1)
    balanced = [still]
    gruau_fitness([still], balanced)
    assert balanced == [] and 0 < still.fitness < 0.1, "the long pole falls from its 0.07 rad start"
