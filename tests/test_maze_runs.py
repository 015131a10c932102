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
