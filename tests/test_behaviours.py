"""Behaviours beside fitness in a serial run: declared and checked by genome, selected on (novelty, Pareto,
blend), kept through ask/tell and checkpoints, and leaving a run of fitness alone exactly as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

from behaviour_task import xor_behaviour_fitness
from helpers import doc_snippet
from neatify import Checkpoint, EvolutionConfig, Network, Population
from neatify.config import ConfigError
from neatify.evaluation import FitnessError
from neatify.io.checkpoint import CheckpointError
from test_population import fingerprint
from xor_task import xor_fitness


def novelty_config(**changes) -> EvolutionConfig:
    base = dict(population_size=40, behaviour_size=4, selection="novelty", novelty_threshold=0.3, elite_cells=3,
                target_species=4)
    return EvolutionConfig(**{**base, **changes})


@pytest.mark.parametrize("changes, message", [
    (dict(selection="novelty"), "selection 'novelty' needs behaviour_size > 0"),
    (dict(selection="pareto", objectives=["fitness", "novelty"]), "objective 'novelty' needs behaviour_size"),
    (dict(selection="pareto", behaviour_size=2, objectives=["behaviour[2]"]), "beyond behaviour_size 2"),
    (dict(selection="blend", objectives=["fitness", "speed"]), "unknown objective 'speed'"),
    (dict(selection="blend", objectives=["fitness", "size"], blend_weights=[1.0]), "1 weights for 2 objectives"),
    (dict(selection="best"), "selection must be one of"),
    (dict(behaviour_size=2, elite_cells=4, elite_bounds=[0.0, 1.0]), "elite_bounds has 2 values"),
    (dict(blend_weights=[1.0, "x"]), "blend_weights must be a list of numbers"),
])
def test_config_refuses_selection_keys_that_do_not_fit(changes, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        EvolutionConfig(**changes)


def test_a_behaviour_declared_but_not_given_or_wrong_is_refused_by_genome():
    pop = Population(config=novelty_config(), num_inputs=2, num_outputs=1, seed=1)

    def with_bad_behaviour(genomes):
        xor_behaviour_fitness(genomes)
        genomes[3].behaviour = [0.0, float("nan"), 0.0, 0.0]

    with pytest.raises(FitnessError, match=f"genome {pop.genomes[3].id} has non-finite behaviour") as caught:
        pop.run_generation(with_bad_behaviour)
    assert caught.value.genome_id == pop.genomes[3].id
    with pytest.raises(FitnessError, match=f"genome {pop.genomes[0].id} has no behaviour: the run declares "
                                           "behaviour_size 4"):
        pop.run_generation(xor_fitness)
    genomes = pop.ask()
    with pytest.raises(FitnessError, match=f"genome {genomes[1].id} has a behaviour of 3 values"):
        pop.tell([1.0] * len(genomes), [[0.0] * 4] + [[0.0] * 3] * (len(genomes) - 1))
    for odd in (["0.5"] * 4, [True] * 4):  # numpy would read both as floats
        with pytest.raises(FitnessError, match=f"genome {genomes[0].id} has behaviour .*; expected a flat vector"):
            pop.tell([1.0] * len(genomes), [odd] * len(genomes))
    assert pop.history == [] and pop.selection.archive is not None and len(pop.selection.archive) == 0
    pop.run_generation(xor_behaviour_fitness)  # nothing was lost: the same generation, evaluated now
    assert pop.generation == 0 and pop.behaviours.shape == (40, 4)


def test_ask_tell_with_behaviours_equals_run_generation():
    by_fn = Population(config=novelty_config(selection="pareto", objectives=["fitness", "novelty", "size"]),
                       num_inputs=2, num_outputs=1, seed=5)
    by_tell = Population(config=by_fn.config, num_inputs=2, num_outputs=1, seed=5)
    for _ in range(4):
        by_fn.run_generation(xor_behaviour_fitness)
        genomes = by_tell.ask()
        xor_behaviour_fitness(genomes)
        by_tell.tell(np.array([g.fitness for g in genomes]), np.array([g.behaviour for g in genomes]))
        assert fingerprint(by_tell) == fingerprint(by_fn)
        assert by_tell.scores.tolist() == by_fn.scores.tolist()


def test_selection_signal_is_what_breeding_and_stagnation_read_while_fitness_is_reported():
    pop = Population(config=novelty_config(), num_inputs=2, num_outputs=1, seed=2)
    pop.run_generation(xor_behaviour_fitness)
    assert np.array_equal(pop.scores, pop.selection.novelty)
    assert pop.history[-1].best_fitness == pop.fitness.max()
    for species in pop.species:
        assert species.best_fitness == max(pop.scores[pop.genomes.index(g)] for g in species.members)


def test_behaviours_leave_a_run_of_fitness_alone_exactly_as_it_was():
    plain = Population(pop_size=40, num_inputs=2, num_outputs=1, seed=9)
    declared = Population(config=EvolutionConfig(population_size=40, behaviour_size=4), num_inputs=2, num_outputs=1,
                          seed=9)
    for _ in range(5):
        plain.run_generation(xor_fitness)
        declared.run_generation(xor_behaviour_fitness)
        assert fingerprint(declared) == fingerprint(plain)
    assert "selection" not in plain.state_dict() and "behaviours" in declared.state_dict()
    assert declared.history == plain.history


@pytest.mark.parametrize("changes", [dict(), dict(novelty_archive="random", prob_archive_add=0.2),
                                     dict(selection="blend", objectives=["fitness", "novelty"], blend_weights=[1, 3])])
def test_resume_with_novelty_and_archives_continues_exactly(tmp_path, changes):
    config = novelty_config(**changes)
    straight = Population(config=config, num_inputs=2, num_outputs=1, seed=21)
    stopped = Population(config=config, num_inputs=2, num_outputs=1, seed=21)
    for _ in range(3):
        straight.run_generation(xor_behaviour_fitness)
        stopped.run_generation(xor_behaviour_fitness)
    Checkpoint.save(stopped, tmp_path / "run.json")
    resumed = Checkpoint.load(tmp_path / "run.json")
    assert len(resumed.selection.archive) > 0 and resumed.selection.elites.elites
    for _ in range(3):
        straight.run_generation(xor_behaviour_fitness)
        resumed.run_generation(xor_behaviour_fitness)
        assert fingerprint(resumed) == fingerprint(straight)
    assert resumed.state_dict() == straight.state_dict()


def test_a_checkpoint_with_behaviours_of_the_wrong_length_is_refused(tmp_path):
    pop = Population(config=novelty_config(), num_inputs=2, num_outputs=1, seed=3)
    pop.run_generation(xor_behaviour_fitness)
    Checkpoint.save(pop, tmp_path / "run.json")
    data = json.loads((tmp_path / "run.json").read_text())
    data["population"]["selection"]["archive"]["behaviours"].append([0.0])
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="archive.behaviours: every behaviour must have behaviour_size 4"):
        Checkpoint.load(tmp_path / "bad.json")


def test_a_hot_standby_snapshot_carries_behaviours_and_archives_and_the_run_continues_exactly():
    from neatify.distributed.core.standby import decode_state, encode_state

    straight = Population(config=novelty_config(), num_inputs=2, num_outputs=1, seed=8)
    for _ in range(3):
        straight.run_generation(xor_behaviour_fitness)
    population, _ = decode_state(encode_state(straight.state_dict(), []))
    promoted = Population.from_state_dict(population)
    assert promoted.selection.to_dict() == straight.selection.to_dict()
    for _ in range(2):
        straight.run_generation(xor_behaviour_fitness)
        promoted.run_generation(xor_behaviour_fitness)
    assert promoted.state_dict() == straight.state_dict()


def test_usage_doc_snippets_run_as_written(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(doc_snippet("docs/usage.md", 'objectives=["fitness", "novelty", "size"]'), namespace)
    pop = namespace["pop"]
    assert pop.generation == 4 and len(pop.selection.archive) > 0 and pop.selection.elites.elites
    assert namespace["champion"].fitness == max(h.best_fitness for h in pop.history)
    exec(doc_snippet("docs/usage.md", "Checkpoint.export_elites_json(pop.selection.elites"), namespace)
    assert Checkpoint.load_elites_json("elites.json").to_dict() == pop.selection.elites.to_dict()
    assert (tmp_path / "elites.png").stat().st_size > 1000


def test_a_batch_reports_behaviours_beside_fitness_and_a_bad_one_as_its_genome_s_error():
    from neatify.evaluation import apply_results, evaluate_batch

    pop = Population(config=novelty_config(), num_inputs=2, num_outputs=1, seed=6)
    genomes = pop.genomes[:3]

    def fitness(batch):
        xor_behaviour_fitness(batch)
        for genome in batch:
            if genome.id == genomes[1].id:
                genome.behaviour = [[0.0, 1.0]]

    values, errors = evaluate_batch(fitness, genomes)
    assert [entry[0] for entry in values] == [genomes[0].id, genomes[2].id]
    assert all(len(entry[2]) == 4 for entry in values)
    assert errors[0][0] == genomes[1].id and "expected a flat vector of real numbers" in errors[0][1]
    copies = {g.id: g.copy(g.id) for g in genomes}
    apply_results(copies, (values, []), "here")
    assert copies[genomes[2].id].behaviour == values[1][2] and copies[genomes[1].id].behaviour is None


def test_novelty_selection_explores_more_of_the_behaviour_space_than_fitness_selection():
    """Both keep an archive of elites over the networks' two outputs: selecting on novelty fills more cells."""
    def fitness(genomes):
        for genome in genomes:
            outputs = Network(genome).activate([1.0, 0.5])
            genome.behaviour = outputs
            genome.fitness = -abs(outputs[0] - 0.9) - abs(outputs[1] - 0.9)

    covered = {}
    for selection in ("fitness", "novelty"):
        config = EvolutionConfig(population_size=50, behaviour_size=2, selection=selection, novelty_threshold=0.05,
                                 elite_cells=10, target_species=4)
        runs = [Population(config=config, num_inputs=2, num_outputs=2, seed=seed) for seed in (0, 1)]
        for pop in runs:
            pop.run(fitness, 15)
        covered[selection] = sum(len(pop.selection.elites.elites) for pop in runs)
    assert covered["novelty"] > 1.1 * covered["fitness"], covered
