"""The archive of elites: the fittest genome per behaviour cell, kept beside a run, exported as JSON, drawn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from behaviour_task import xor_behaviour_fitness
from neatify import Checkpoint, EvolutionConfig, Genome, Population
from neatify.io.checkpoint import CheckpointError
from neatify.objectives import EliteArchive


def genome_dict(row: int) -> dict:
    return {"id": row, "num_inputs": 1, "num_outputs": 1, "nodes": [[1, "output", 0.0, "tanh"]], "connections": [],
            "fitness": None}


def test_each_cell_keeps_its_fittest_the_lowest_id_among_equals_and_outsiders_go_to_the_border():
    archive = EliteArchive([(0.0, 1.0), (0.0, 2.0)], cells=2)
    behaviours = np.array([[0.1, 0.1], [0.2, 0.3], [0.9, 1.9], [5.0, -3.0], [0.3, 0.2]])
    changed = archive.update(np.array([1.0, 3.0, 2.0, 4.0, 3.0]), behaviours, np.array([10, 11, 12, 13, 9]),
                             genome_dict)
    assert changed == 3
    assert {cell: (e.fitness, e.genome["id"]) for cell, e in archive.elites.items()} == {
        (0, 0): (3.0, 4), (1, 1): (2.0, 2), (1, 0): (4.0, 3)}
    assert archive.update(np.array([3.0, 1.5]), np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([1, 2]),
                          genome_dict) == 0  # an equal and a worse: nothing changes
    assert archive.coverage() == 3 / 4


def test_a_run_keeps_its_archive_and_exports_and_reloads_it(tmp_path):
    config = EvolutionConfig(population_size=30, behaviour_size=4, elite_cells=3, elite_bounds=[0.0, 1.0] * 4)
    pop = Population(config=config, num_inputs=2, num_outputs=1, seed=4)
    pop.run(xor_behaviour_fitness, 3)
    archive = pop.selection.elites
    assert max(e.fitness for e in archive.elites.values()) == pop.best_genome.fitness
    for cell, elite in archive.elites.items():
        assert tuple(archive.cell_of(np.array([elite.behaviour]))[0].tolist()) == cell
        assert Genome.from_dict(elite.genome).fitness == elite.fitness
    Checkpoint.export_elites_json(archive, tmp_path / "elites.json")
    assert Checkpoint.load_elites_json(tmp_path / "elites.json").to_dict() == archive.to_dict()
    data = json.loads((tmp_path / "elites.json").read_text())
    data["archive"]["elites"][0]["cell"] = [0, 0, 0, 3]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"elite of cell \[0, 0, 0, 3\]: not a cell of the 3-cell grid"):
        Checkpoint.load_elites_json(tmp_path / "bad.json")


@pytest.mark.parametrize("bounds", [[(0.0, 1.0), (0.0, 1.0), (0.0, 1.0)], [(0.0, 1.0)]])
def test_the_picture_is_drawn_for_any_pair_of_dimensions(tmp_path, bounds):
    pytest.importorskip("matplotlib")
    from neatify.plot import plot_elites

    archive = EliteArchive(bounds, cells=4)
    rng = np.random.default_rng(0)
    archive.update(rng.random(20), rng.random((20, len(bounds))), np.arange(20), genome_dict)
    path = plot_elites(archive, tmp_path / "elites.png", dims=(2, 0) if len(bounds) == 3 else (0, 1))
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
