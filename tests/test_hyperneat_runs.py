"""HyperNEAT runs: the CPPN is what travels, so process pools give the local run and checkpoints resume exactly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import doc_snippet
from neatify import Checkpoint, Population
from neatify.backends.processes import ParallelEvaluator
from neatify.envs.boxes import Boxes
from neatify.hyperneat import HyperNEAT, Substrate, cppn_config, grid_coordinates

FIELD = grid_coordinates(11, 11)
BOXES = HyperNEAT(Substrate(FIELD, FIELD), output_activation="identity").fitness(Boxes(11))
CONFIG = cppn_config(population_size=12, target_species=2, prob_add_node=0.3)


def population(seed: int = 5) -> Population:
    return Population(num_inputs=4, num_outputs=1, config=CONFIG, seed=seed)


def trace(pop: Population) -> list:
    """What a run did: every genome's id, genes and fitness."""
    return [g.to_dict() for g in pop.genomes]


def test_a_task_whose_fields_do_not_match_the_substrate_is_refused_by_name():
    small = Substrate(grid_coordinates(3, 3), grid_coordinates(3, 3))
    with pytest.raises(ValueError, match="the substrate has 9 input coordinates but Boxes has 121 inputs"):
        HyperNEAT(small).fitness(Boxes(11))


@pytest.mark.slow
def test_boxes_fitness_is_set_on_every_genome_and_the_run_is_reproducible():
    runs = []
    for _ in range(2):
        pop = population()
        pop.run(BOXES, 2)
        runs.append(trace(pop))
    assert runs[0] == runs[1]
    assert all(0.0 < g["fitness"] <= 100.0 for g in runs[0])


@pytest.mark.slow
def test_a_checkpointed_hyperneat_run_resumes_exactly(tmp_path):
    straight, stopped = population(), population()
    straight.run(BOXES, 2)
    stopped.run(BOXES, 2)
    Checkpoint.save(stopped, tmp_path / "run.json")
    resumed = Checkpoint.load(tmp_path / "run.json")
    straight.run(BOXES, 2)
    resumed.run(BOXES, 2)
    assert trace(resumed) == trace(straight)
    assert resumed.state_dict() == straight.state_dict()


@pytest.mark.slow
def test_a_process_pool_run_equals_the_local_run():
    local, pooled = population(), population()
    local.run(BOXES, 3)
    with ParallelEvaluator(BOXES, workers=2) as evaluator:
        pooled.run(evaluator, 3)
    assert trace(pooled) == trace(local)


def test_the_guide_s_substrate_snippet_maps_the_image_row_by_row():
    scope: dict = {}
    exec(doc_snippet("docs/hyperneat.md", "substrate = Substrate(inputs=field"), scope)
    substrate = scope["substrate"]
    assert substrate.inputs[0] == (-1.0, -1.0) and substrate.inputs[1] == (-0.8, -1.0)
    assert substrate.inputs[11] == (-1.0, -0.8) and len(substrate.outputs) == 121


@pytest.mark.slow
def test_the_guide_s_worked_example_runs_and_rescales_the_champion(capsys):
    exec(doc_snippet("docs/hyperneat.md", "champion = pop.run(fitness, generations=3)"), {})
    lines = capsys.readouterr().out.splitlines()
    assert "connections;" in lines[0] and lines[1].startswith("at 33x33, with no further evolution: ")


@pytest.mark.slow
def test_the_boxes_benchmark_prints_its_runs_the_success_curve_and_the_scaling_test():
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "benchmarks/hyperneat_boxes.py", "--seeds", "2", "--population", "12",
                             "--generations", "2", "--every", "1"], cwd=root, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "'dx', 'dy'" in lines[0]
    assert [line.split()[:4] for line in lines[1:5]] == [["seed", "0", "gen", "0"], ["seed", "0", "gen", "1"],
                                                         ["seed", "1", "gen", "0"], ["seed", "1", "gen", "1"]]
    assert lines[5].startswith("solved 0/2 runs") and lines[6].startswith("success curve")
    assert [line.split(":")[0].strip() for line in lines[-3:]] == ["11x11", "33x33", "55x55"]
    assert all("on the large box" in line and "/75" in line for line in lines[1:5] + lines[-3:])


def run_benchmark(*argv: str) -> list[str]:
    """A benchmark script's output lines, run as a user runs it (it must exit 0)."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, *argv], cwd=root, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.slow
def test_the_es_hyperneat_maze_benchmark_reports_each_run_and_the_runs_solved():
    lines = run_benchmark("benchmarks/es_hyperneat_maze.py", "--seeds", "2", "--population", "8", "--cap", "16",
                          "--every", "1", "--steps", "100")
    assert lines[0] == "ES-HyperNEAT, hard maze, fitness (waypoints fitness), 100 steps, depth 2, population 8"
    runs = [line for line in lines if line.startswith("seed ")]
    assert len(runs) == 2 and all(re.fullmatch(rf"seed {k}: not solved after 16 evaluations, 2 generations, \d+ s", run)
                                  for k, run in enumerate(runs))
    progress = [float(m[1]) for m in (re.search(r"best fitness so far +(\d+\.\d\d) \(its robot ended at", line)
                                        for line in lines) if m]
    assert len(progress) == 4 and all(0.0 <= p < 13.0 for p in progress)  # 12 waypoints and the goal: 13 solves
    assert lines[-1].startswith("solved 0/2; mean evaluations of the solved -;")


@pytest.mark.slow
def test_the_success_benchmark_runs_both_methods_without_pureples():
    lines = run_benchmark("benchmarks/hyperneat_success.py", "--seeds", "2", "--generations", "1")
    assert lines[0].startswith("XOR, population 150, at most 1 generations, 2 seeds, ES version S")
    assert [line.split()[:4] for line in lines[1:]] == [["NEATify", "hyperneat", "solved", "0/2"],
                                                       ["NEATify", "es", "solved", "0/2"]]
