"""A run file's ``[task] gym = ...``: ``neatify run`` and ``neatify worker`` need no Python file and equal the
library."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("gymnasium")

from neatify import Checkpoint, EvolutionConfig, Population  # noqa: E402
from neatify.cli.main import main  # noqa: E402
from neatify.gym import GymEvaluator  # noqa: E402

RUN_FILE = """
[run]
num_inputs = 4
num_outputs = 2
generations = 2
seed = 7
workers = {workers}
champion = "champion.json"

[evolution]
population_size = 30
prob_add_node = 0.2

[task]
gym = "CartPole-v1"
episodes = 2
max_steps = 50
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "cartpole.toml").write_text(RUN_FILE.format(workers=1))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def library_champion(**options) -> dict:
    """RUN_FILE's run (its task with ``options``) done with the library, serially, the task a reporter."""
    config = EvolutionConfig(population_size=30, prob_add_node=0.2)
    population = Population(num_inputs=4, num_outputs=2, seed=7, config=config)
    task = GymEvaluator("CartPole-v1", episodes=2, max_steps=50, seed=7, **options)
    population.add_reporter(task)
    return population.run(task, 2).to_dict()


@pytest.mark.slow
def test_run_file_task_runs_without_a_python_file_and_equals_the_library(project, capsys):
    assert main(["run", "cartpole.toml", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("champion: genome")
    assert Checkpoint.load_genome_json("champion.json").to_dict() == library_champion()


@pytest.mark.slow
def test_a_normalized_task_learns_its_statistics_and_reaches_the_pool_as_in_the_library(project):
    """``neatify run`` adds the task as a reporter; the pool's processes get the statistics each generation."""
    (project / "cartpole.toml").write_text(RUN_FILE.format(workers=2) + "normalize = true\nresample = true\n")
    assert main(["run", "cartpole.toml", "--quiet"]) == 0
    assert Checkpoint.load_genome_json("champion.json").to_dict() == library_champion(normalize=True, resample=True)


@pytest.mark.parametrize("edit, message", [
    (("episodes = 2", "episode = 2"), "[task]: unknown key(s): episode; expected gym, episodes"),
    (("episodes = 2", "episodes = true"), "[task]: episodes must be int, got True"),
    (('gym = "CartPole-v1"', 'gym = "NoSuchEnv-v0"'), "[task] gym = 'NoSuchEnv-v0': NameNotFound"),
    (("num_inputs = 4", "num_inputs = 3"),
     "needs num_inputs = 4 and num_outputs = 2 in [run]; the run file has 3 and 2"),
    (("[run]", '[run]\nfitness = "x:y"'), "give [run] fitness or a [task] table, not both"),
    (('gym = "CartPole-v1"', 'gymn = "CartPole-v1"'), "[task]: unknown key(s): gymn"),
])
def test_bad_task_tables_are_one_line_errors_naming_the_key(project, capsys, edit, message):
    (project / "cartpole.toml").write_text(RUN_FILE.format(workers=1).replace(*edit))
    assert main(["run", "cartpole.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neatify: error:") and message in err and len(err.splitlines()) == 1


def test_a_worker_given_a_run_file_without_task_says_so(project, capsys):
    (project / "plain.toml").write_text('[run]\nnum_inputs = 4\nnum_outputs = 2\nfitness = "x:y"\n')
    assert main(["worker", "plain.toml", "--max-connect-attempts", "1"]) == 1
    assert "plain.toml: a worker given a run file needs its [task] table" in capsys.readouterr().err


@pytest.mark.slow
def test_run_through_the_process_pool_equals_serial(project):
    (project / "cartpole.toml").write_text(RUN_FILE.format(workers=2))
    assert main(["run", "cartpole.toml", "--quiet"]) == 0
    assert Checkpoint.load_genome_json("champion.json").to_dict() == library_champion()


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"normalize": True, "resample": True}], ids=["plain", "normalized"])
def test_master_and_a_worker_given_only_the_run_file_equal_the_library(project, options):
    """A normalised task too: the master learns its statistics and sends them to the worker with each task."""
    lines = "".join(f"{key} = {str(value).lower()}\n" for key, value in options.items())
    (project / "cartpole.toml").write_text(RUN_FILE.format(workers=1) + lines)
    master = subprocess.Popen([sys.executable, "-m", "neatify", "master", "cartpole.toml", "--port", "0",
                               "--worker-wait-timeout", "60", "--quiet"],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        first = master.stdout.readline()
        assert first.startswith("master listening on 127.0.0.1:"), first + master.stderr.read()
        port = first.strip().rsplit(":", 1)[1]
        worker = subprocess.Popen([sys.executable, "-m", "neatify", "worker", "cartpole.toml", "--master-port", port,
                                   "--capacity", "7", "--max-connect-attempts", "5"],
                                  cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = master.communicate(timeout=120)
        assert master.returncode == 0, err
        worker_out, worker_err = worker.communicate(timeout=30)
        assert worker.returncode == 0 and "master shut down" in worker_out, worker_err
    finally:
        for proc in (master, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert Checkpoint.load_genome_json(project / "champion.json").to_dict() == library_champion(**options)


def test_task_resample_draws_new_episodes_each_generation_it_is_told() -> None:
    from neatify.cli.task import task_fitness

    evaluator = task_fitness({"gym": "CartPole-v1", "resample": True}, 7, (4, 2))
    evaluator.set_generation(3)
    assert (evaluator.resample, evaluator.seed, evaluator.generation) == (True, 7, 3)
