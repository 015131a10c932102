"""The double-pole benchmark's choice of which champion to test, as in the NEAT paper's source."""

import sys
from pathlib import Path

from helpers import make_genome
from neatify.speciation.species import Species

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from double_pole import SpeciesChampions  # noqa: E402


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
