import math
import random

import numpy as np
import pytest

import neat_python_style
from helpers import doc_snippet
from neatify import EvolutionConfig, FitnessError, Network, Population
from neatify.breeding.reproduction import allocate_offspring, shared_fitness
from neatify.speciation.species import STEER_TRIES, Species, adapt_threshold, find_threshold, speciate_steered
from xor_task import XOR_CASES, xor_fitness

def fingerprint(pop):
    return [(g.id, sorted(g.connections), sorted(g.nodes), [c.weight for c in g.connections.values()], g.fitness)
            for g in pop.genomes]


def test_same_seed_same_run_and_evaluation_order_does_not_matter():
    def shuffled_fitness(genomes):
        order = list(genomes)
        random.Random(len(order)).shuffle(order)
        xor_fitness(order)

    a = Population(pop_size=60, num_inputs=2, num_outputs=1, seed=11)
    b = Population(pop_size=60, num_inputs=2, num_outputs=1, seed=11)
    for _ in range(8):
        a.run_generation(xor_fitness)
        b.run_generation(shuffled_fitness)
        assert fingerprint(a) == fingerprint(b)
    assert [h.best_fitness for h in a.history] == [h.best_fitness for h in b.history]
    c = Population(pop_size=60, num_inputs=2, num_outputs=1, seed=12)
    c.run_generation(xor_fitness)
    assert fingerprint(c) != fingerprint(Population(pop_size=60, num_inputs=2, num_outputs=1, seed=11))


def test_generation_bookkeeping_and_unique_ids():
    pop = Population(pop_size=50, num_inputs=2, num_outputs=1, seed=3)
    seen = set()
    for gen in range(6):
        pop.run_generation(xor_fitness)
        assert pop.generation == gen
        assert len(pop.genomes) == 50
        ids = {g.id for g in pop.genomes}
        assert len(ids) == 50 and not ids & seen
        seen |= ids
        assert all(isinstance(g.fitness, float) and math.isfinite(g.fitness) for g in pop.genomes)
        assert sum(len(s.members) for s in pop.species) == 50
        assert {g.id for s in pop.species for g in s.members} == ids
        for s in pop.species:
            assert s.staleness == pop.generation - s.last_improved
            assert s.best_fitness >= max(g.fitness for g in s.members)
    assert pop.best_genome.fitness == max(h.best_fitness for h in pop.history)
    assert pop.evaluations == 6 * 50


def test_negative_fitness_is_handled():
    pop = Population(pop_size=40, num_inputs=2, num_outputs=1, seed=5)

    def negative(genomes):
        xor_fitness(genomes)
        for g in genomes:
            g.fitness -= 1000.0

    for _ in range(5):
        pop.run_generation(negative)
    assert len(pop.genomes) == 40
    assert pop.best_genome.fitness < -996


@pytest.mark.parametrize("bad, words", [(None, "has no fitness"), (float("nan"), "non-finite"),
                                        (float("inf"), "non-finite"), ("3", "expected a float")])
def test_bad_fitness_names_the_genome_and_can_be_retried(bad, words):
    pop = Population(pop_size=20, num_inputs=2, num_outputs=1, seed=1)
    pop.run_generation(xor_fitness)
    ids = [g.id for g in pop.genomes]

    def broken(genomes):
        xor_fitness(genomes)
        genomes[3].fitness = bad

    with pytest.raises(FitnessError, match=rf"genome {pop.next_genome_id + 3}\b.*{words}|{words}"):
        pop.run_generation(broken)
    bred = [g.id for g in pop.genomes]
    assert bred != ids and len(bred) == 20
    pop.run_generation(xor_fitness)  # the same generation is evaluated again, nothing lost
    assert [g.id for g in pop.genomes] == bred
    assert pop.generation == 1


def test_fitness_function_exception_leaves_population_retryable():
    pop = Population(pop_size=20, num_inputs=2, num_outputs=1, seed=1)

    def explode(genomes):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        pop.run_generation(explode)
    pop.run_generation(xor_fitness)
    assert pop.generation == 0 and len(pop.history) == 1


def test_run_returns_champion_and_stops_at_threshold():
    pop = Population(pop_size=150, num_inputs=2, num_outputs=1, seed=7)
    champion = pop.run(xor_fitness, generations=300, fitness_threshold=3.9)
    assert champion.fitness >= 3.9
    assert pop.history[-1].best_fitness >= 3.9
    net = Network(champion)
    assert [round(net.activate(list(x))[0]) for x, _ in XOR_CASES] == [0, 1, 1, 0]


def test_offspring_counts_add_up_to_population_size():
    for shares, size, min_size in [([0.1, 0.5, 0.4], 150, 2), ([0.0, 0.0], 7, 2), ([1.0] * 10, 15, 2),
                                   ([0.3, 0.3, 0.3], 10, 0), ([5.0, 1e-9, 1e-9, 1e-9], 100, 2)]:
        counts = allocate_offspring(shares, size, min_size)
        assert sum(counts) == size
        if len(shares) * min_size < size:
            assert min(counts) >= min_size
    assert allocate_offspring([3.0, 1.0], 100, 2) == [75, 25]


def test_fitness_sharing_divides_by_species_size():
    crowded = np.array([1.0] * 10)
    lonely = np.array([1.0, 0.0])
    shares = shared_fitness([crowded, lonely])
    assert shares == pytest.approx([1.0, 0.5])


def test_species_count_steered_toward_target():
    config = EvolutionConfig(target_species=4, compatibility_threshold=0.5, compatibility_threshold_step=1.0)
    pop = Population(pop_size=80, num_inputs=2, num_outputs=1, config=config, seed=2)
    for _ in range(25):
        pop.run_generation(xor_fitness)
    assert pop.compatibility_threshold != 0.5
    assert 2 <= len(pop.species) <= 8


def test_threshold_scales_with_the_species_count_outside_the_band_around_the_target():
    config = EvolutionConfig(target_species=20)
    assert [adapt_threshold(3.0, n, config) for n in (14, 20, 30)] == [3.0, 3.0, 3.0]
    assert adapt_threshold(3.0, 80, config) == pytest.approx(3.0 * 4 ** 0.3)
    assert adapt_threshold(3.0, 10, config) == pytest.approx(3.0 * 0.5 ** 0.3)
    assert adapt_threshold(3.0, 20_000, config) == pytest.approx(6.0), "at most doubled"
    assert adapt_threshold(3.0, 1, config) == pytest.approx(2.4), "at most a fifth less"
    assert adapt_threshold(0.31, 1, config) == config.compatibility_threshold_min


def test_a_positive_step_or_a_zero_target_keep_the_rules_before_auto_steering():
    additive = EvolutionConfig(target_species=20, compatibility_threshold_step=0.3)
    assert [adapt_threshold(3.0, n, additive) for n in (21, 20, 19, 20_000)] == pytest.approx([3.3, 3.0, 2.7, 3.3])
    fixed = EvolutionConfig(target_species=0)
    assert [adapt_threshold(3.0, n, fixed) for n in (1, 10_000)] == [3.0, 3.0]


def test_usage_doc_species_snippet_does_what_it_says():
    namespace: dict = {}
    exec(doc_snippet("docs/usage.md", "EvolutionConfig(target_species=25)"), namespace)
    steered, fixed, by_steps = namespace["steered"], namespace["fixed"], namespace["by_steps"]
    assert (steered.species_target(), fixed.species_target(), by_steps.species_target()) == (25, 0, 25)
    assert adapt_threshold(3.0, 100, steered) == pytest.approx(3.0 * 4 ** 0.3)
    assert adapt_threshold(3.0, 100, fixed) == 3.0
    assert adapt_threshold(3.0, 100, by_steps) == pytest.approx(3.3)


def test_a_checkpoint_with_a_fixed_threshold_continues_with_it(tmp_path):
    from neatify.io.checkpoint import Checkpoint

    old_defaults = EvolutionConfig(target_species=0, compatibility_threshold_step=0.3)  # saved before 2026-11-29
    pop = Population(pop_size=60, num_inputs=2, num_outputs=1, config=old_defaults, seed=4)
    pop.run_generation(xor_fitness)
    Checkpoint.save(pop, tmp_path / "old.json")
    restored = Checkpoint.load(tmp_path / "old.json")
    for _ in range(4):
        restored.run_generation(xor_fitness)
    assert restored.compatibility_threshold == 3.0 and restored.config.species_target() == 0


def test_default_steering_keeps_a_large_population_in_band_from_the_first_generation():
    import torch

    from neatify.nn import NeatPopulationModule

    inputs, targets = torch.tensor([list(x) for x, _ in XOR_CASES]), torch.tensor([[y] for _, y in XOR_CASES])

    def batched_xor(genomes):
        errors = ((NeatPopulationModule(genomes)(inputs) - targets) ** 2).sum(dim=(1, 2))
        for genome, error in zip(genomes, errors.tolist()):
            genome.fitness = 4.0 - error

    pop = Population(pop_size=2_000, num_inputs=2, num_outputs=1, seed=0)
    target = pop.config.species_target()
    for _ in range(9):
        pop.run_generation(batched_xor)
    counts = [h.num_species for h in pop.history]
    assert all(target / 2 <= n <= 2 * target for n in counts), f"target {target}, counts {counts}"
    assert pop.compatibility_threshold > 3.0  # the fixed 3.0 of before leaves about 300 species here


def steep_count(threshold, generation):
    """Species a large population forms at a threshold: tenfold for a fifth less threshold, and the
    threshold giving 23 species grows a quarter a generation as the genomes diverge."""
    return max(1, round(23 * (2.0 * 1.25 ** generation / threshold) ** 12))


def test_the_steady_rule_oscillates_on_a_steep_count_and_the_search_keeps_it_in_band():
    config = EvolutionConfig(target_species=23)
    threshold, steady = 3.0, []
    for generation in range(20):
        steady.append(steep_count(threshold, generation))
        threshold = adapt_threshold(threshold, steady[-1], config)
    assert sum(not 11.5 <= n <= 46 for n in steady[10:]) == 10, f"out of band all the time: {steady}"
    threshold, searched, tries = 3.0, [], []
    for generation in range(20):
        tried = []
        threshold = find_threshold(threshold, 23, config.compatibility_threshold_min,
                                   lambda t: tried.append(t) or steep_count(t, generation))
        searched.append(steep_count(threshold, generation))
        tries.append(len(tried))
        threshold = adapt_threshold(threshold, searched[-1], config)
    assert all(11.5 <= n <= 46 for n in searched), searched
    assert max(tries) < STEER_TRIES, tries


def test_the_search_tries_the_threshold_first_doubles_or_halves_then_bisects():
    def count(threshold):
        return 100 if threshold < 5.0 else 1

    tried = []
    assert find_threshold(3.0, 10, 0.3, lambda t: 10) == 3.0
    best = find_threshold(3.0, 10, 0.3, lambda t: tried.append(t) or count(t))
    assert tried[:4] == pytest.approx([3.0, 6.0, 6 ** 0.5 * 3 ** 0.5, (18 ** 0.5 * 6) ** 0.5])
    assert len(tried) == STEER_TRIES, "no threshold gives 5-20 species: every try is spent"
    assert best == min(tried, key=lambda t: abs(math.log(count(t) / 10))), "the closest count wins"
    floor = []
    assert find_threshold(1.0, 10, 0.3, lambda t: floor.append(t) or 1) == 1.0  # 1 is as near as 1
    assert floor == [1.0, 0.5, 0.3], "halved, but never below the minimum, and no further"


def test_steered_speciation_gives_up_past_the_limit_and_keeps_the_other_rules():
    from neatify.speciation.species import speciate, speciate_at_most

    pop = Population(pop_size=200, num_inputs=2, num_outputs=1, seed=5)
    genomes = pop.genomes
    many, _ = speciate(genomes, [], 0.05, pop.config, 0, 0)
    assert len(many) > 20
    assert speciate_at_most(genomes, [], 0.05, pop.config, 0, 0, len(many) - 1) is None
    assert speciate_at_most(genomes, [], 0.05, pop.config, 0, 0, len(many))[0] == many
    species, _, threshold = speciate_steered(genomes, [], 0.05, pop.config, 0, 0)
    assert 5 <= len(species) <= 20 and threshold > 0.05
    for other in (EvolutionConfig(target_species=0), EvolutionConfig(compatibility_threshold_step=0.3)):
        species, next_id, threshold = speciate_steered(genomes, [], 0.05, other, 0, 0)
        assert (species, threshold) == (many, 0.05)


def test_searching_speciation_stays_deterministic_across_a_checkpoint(monkeypatch):
    import neatify.speciation.species

    tries = []  # one threshold per speciation
    real = neatify.speciation.species._Speciation.at
    monkeypatch.setattr(neatify.speciation.species._Speciation, "at",
                        lambda self, *args: tries.append(args[0]) or real(self, *args))
    config = EvolutionConfig(target_species=6, prob_add_node=0.2)
    straight = Population(pop_size=300, num_inputs=2, num_outputs=1, config=config, seed=8)
    for _ in range(3):
        straight.run_generation(xor_fitness)
    resumed = Population.from_state_dict(straight.state_dict())
    tries.clear()
    for _ in range(4):
        straight.run_generation(xor_fitness)
    searched = len(tries) - 4
    for _ in range(4):
        resumed.run_generation(xor_fitness)
        assert 3 <= len(resumed.species) <= 12
    assert searched > 0, "the search ran after the checkpoint"
    assert resumed.state_dict() == straight.state_dict()


def test_speciation_groups_by_distance_and_keeps_species_ids():
    from helpers import make_genome
    from neatify.speciation.species import speciate

    def genome(gid, weights):
        return make_genome(2, 1, [(2, 0.0, "tanh")],
                           [(i, i % 2, 2, w, True) for i, w in enumerate(weights)], genome_id=gid)

    config = EvolutionConfig(c1=1.0, c2=1.0, c3=1.0)
    near = [genome(0, [0.0, 0.0]), genome(1, [0.1, 0.0]), genome(2, [0.0, 0.2])]
    far = [genome(3, [5.0, 5.0]), genome(4, [5.0, 5.2])]
    other = [genome(5, [0.0, 0.0, 0.0, 0.0, 0.0])]  # three excess genes
    species, next_id = speciate(near + far + other, [], 1.0, config, generation=0, next_species_id=7)
    assert [[g.id for g in s.members] for s in species] == [[0, 1, 2], [3, 4], [5]]
    assert [s.id for s in species] == [7, 8, 9] and next_id == 10
    # Next generation: each old species takes the closest new genome as representative.
    children = [genome(10, [5.1, 5.1]), genome(11, [0.05, 0.0]), genome(12, [9.0, 9.0])]
    again, next_id = speciate(children, species, 1.0, config, generation=1, next_species_id=next_id)
    assert [(s.id, [g.id for g in s.members]) for s in again] == [(7, [11]), (8, [10]), (10, [12])]


@pytest.mark.slow
def test_importing_neatify_is_silent_and_light():
    import subprocess
    import sys

    code = ("import logging, sys, neatify; "
            "print(len(logging.getLogger().handlers), 'torch' in sys.modules, 'ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == "0 False False\n"


@pytest.mark.parametrize("fitness_fn, words", [
    (neat_python_style.eval_genomes, r"eval_genomes\(genomes, config\) cannot be called with the genomes alone"),
    (neat_python_style.unpacking, r"unpacks \(genome_id, genome\) pairs"),
])
def test_neat_python_fitness_functions_are_told_what_to_write(fitness_fn, words):
    pop = Population(pop_size=10, seed=1)
    with pytest.raises(TypeError, match=words) as error:
        pop.run_generation(fitness_fn)
    assert "for genome in genomes:" in str(error.value)
    pop.run_generation(lambda genomes: [setattr(g, "fitness", 1.0) for g in genomes])  # nothing was lost


def test_other_type_errors_pass_through():
    def broken(genomes):
        return len(5)

    with pytest.raises(TypeError, match="has no len"):
        Population(pop_size=10, seed=1).run_generation(broken)


def test_a_generation_s_best_can_drop_but_best_genome_never_does():
    """What docs/usage.md says: with a noisy fitness the per-generation best falls, pop.best_genome does not."""
    noise = random.Random(0)
    pop = Population(pop_size=20, seed=2)
    pop.run(lambda genomes: [setattr(g, "fitness", noise.random()) for g in genomes], 8)
    bests = [h.best_fitness for h in pop.history]
    assert any(later < earlier for earlier, later in zip(bests, bests[1:]))
    assert pop.best_genome.fitness == max(bests)
