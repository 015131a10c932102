import json

import pytest

from neatify import Checkpoint, EvolutionConfig, Population
from neatify.checkpoint import CheckpointError
from test_population import fingerprint, xor_fitness


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_resume_continues_exactly_as_if_never_stopped(tmp_path, suffix):
    config = EvolutionConfig(prob_add_node=0.2, target_species=5)
    straight = Population(pop_size=60, num_inputs=2, num_outputs=1, config=config, seed=21)
    stopped = Population(pop_size=60, num_inputs=2, num_outputs=1, config=config, seed=21)
    for _ in range(4):
        straight.run_generation(xor_fitness)
        stopped.run_generation(xor_fitness)
    path = tmp_path / f"run{suffix}"
    Checkpoint.save(stopped, path)
    if suffix == ".json":
        assert json.loads(path.read_text())["format"] == "neatify-checkpoint"
    resumed = Checkpoint.load(path)
    for _ in range(5):
        straight.run_generation(xor_fitness)
        resumed.run_generation(xor_fitness)
        assert fingerprint(resumed) == fingerprint(straight)
    assert resumed.state_dict() == straight.state_dict()
    ids = {g.id for g in resumed.genomes}
    assert min(ids) >= 60 * 4, "no genome id reused after resume"


def test_checkpoint_before_first_evaluation_and_after_failure(tmp_path):
    pop = Population(pop_size=30, num_inputs=2, num_outputs=1, seed=2)
    Checkpoint.save(pop, tmp_path / "fresh.json")
    resumed = Checkpoint.load(tmp_path / "fresh.json")
    pop.run_generation(xor_fitness)
    resumed.run_generation(xor_fitness)
    assert fingerprint(pop) == fingerprint(resumed)


def test_genome_export_round_trip(tmp_path):
    pop = Population(pop_size=30, num_inputs=2, num_outputs=1, seed=2)
    champion = pop.run(xor_fitness, generations=3)
    Checkpoint.export_genome_json(champion, tmp_path / "champ.json")
    loaded = Checkpoint.load_genome_json(tmp_path / "champ.json")
    assert loaded.to_dict() == champion.to_dict()


def test_bad_checkpoint_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Checkpoint.load(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        Checkpoint.load(tmp_path / "junk.json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a neatify-checkpoint"):
        Checkpoint.load(tmp_path / "other.json")
