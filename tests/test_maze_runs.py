"""benchmarks/maze_runs.py at a tiny size: runs reproduce from their seed, novelty differs from fitness, the plot."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
maze_runs = pytest.importorskip("maze_runs")


@pytest.mark.slow
def test_runs_reproduce_from_their_seed_and_the_plot_is_drawn(tmp_path) -> None:
    first, again = (maze_runs.run("medium", "novelty", seed=5, cap=48, record=True, population_size=16)
                    for _ in range(2))
    assert (first.generations, first.evaluations) == (3, 48) and not first.solved
    for a, b in zip(first.positions, again.positions):
        np.testing.assert_array_equal(a, b)
    fitness = maze_runs.run("medium", "fitness", seed=5, cap=48, record=True, population_size=16)
    assert not np.array_equal(fitness.positions[-1], first.positions[-1])  # selected on another signal
    path = tmp_path / "positions.png"
    pytest.importorskip("matplotlib")
    maze_runs.plot_positions([first, fitness], str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    lines = maze_runs.summary([first, fitness])
    assert lines[0].startswith("medium  novelty: solved 0/1") and lines[1].startswith("medium  fitness: solved 0/1")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_maze_novelty_run_through_the_process_pool_and_tcp_workers_equals_the_local_run() -> None:
    """The backends batch a generation otherwise than one local call: a genome's robot must not depend on the
    genomes simulated beside it (docs/mazes.md)."""
    fitness = maze_runs.MazeFitness("hard", steps=50)

    def state(fitness_fn) -> dict:
        result = maze_runs.run("hard", "novelty", seed=3, cap=10**6, population_size=30, fitness_fn=fitness_fn,
                               generations=3)
        assert result.generations == 3 and result.state["selection"]["archive"]["behaviours"]
        return result.state

    local = state(fitness)
    for backend in ("pool", "tcp"):
        with maze_runs.evaluator(backend, fitness, workers=2) as remote:
            assert maze_runs.first_difference(local, state(remote)) is None, backend


def test_first_difference_names_the_first_differing_path() -> None:
    a = {"genomes": [{"id": 1, "fitness": 2.0}, {"id": 2, "fitness": 3.0}], "generation": 4}
    assert maze_runs.first_difference(a, a) is None
    b = {"genomes": [{"id": 1, "fitness": 2.0}, {"id": 2, "fitness": 3.5}], "generation": 5}
    assert maze_runs.first_difference(a, b) == "state.genomes[1].fitness: 3.0 != 3.5"
    assert maze_runs.first_difference(a, {**a, "genomes": a["genomes"][:1]}).startswith("state.genomes: [")
