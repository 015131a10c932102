"""docs/gym.md's blocks run as written: the CartPole and Hopper snippets, the run file and its commands."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

pytest.importorskip("gymnasium")

from distributed_helpers import free_port  # noqa: E402
from helpers import doc_snippet  # noqa: E402


@pytest.mark.slow
def test_cartpole_snippet_solves() -> None:
    namespace: dict = {}
    exec(doc_snippet("docs/gym.md", 'GymEvaluator("CartPole-v1", episodes=5'), namespace)
    assert namespace["champion"].fitness == 500.0
    assert (namespace["num_inputs"], namespace["num_outputs"]) == (4, 2)


@pytest.mark.slow
def test_held_out_champion_snippet_generalises() -> None:
    namespace: dict = {}
    exec(doc_snippet("docs/gym.md", 'champion = HeldOutChampion('), namespace)
    assert namespace["champion"].score == 500.0 and namespace["unseen"] == 500.0


@pytest.mark.slow
def test_continuous_control_snippet_runs_as_written(capsys) -> None:
    """The InvertedDoublePendulum block, its threshold lowered so that one generation stops it."""
    pytest.importorskip("mujoco")
    snippet = doc_snippet("docs/gym.md", '"InvertedDoublePendulum-v5", episodes=5')
    assert "< 9000:" in snippet
    namespace: dict = {"__name__": "__main__"}
    exec(snippet.replace("< 9000:", "< -1e9:"), namespace)
    best = namespace["best"]
    assert len(namespace["population"].history) == 1 and best.statistics is not None
    assert float(capsys.readouterr().out) > 0 and best.statistics["count"] == 0  # generation 0: none learnt yet


def test_hopper_snippet_drives_hopper() -> None:
    pytest.importorskip("mujoco")
    namespace: dict = {}
    exec("from neatify.gym import GymEvaluator\n" + doc_snippet("docs/gym.md", 'GymEvaluator("Hopper-v5", seed=1)'),
         namespace)
    assert namespace["hopper"].shape() == (11, 3)


@pytest.mark.slow
def test_run_file_commands_run_locally_and_over_tcp(tmp_path, procs) -> None:
    (tmp_path / "cartpole.toml").write_text(doc_snippet("docs/gym.md", 'gym = "CartPole-v1"', "toml"))
    commands = [shlex.split(line, comments=True)
                for line in doc_snippet("docs/gym.md", "neatify worker cartpole.toml", "bash").splitlines()]
    run, master, worker = commands
    result = subprocess.run([sys.executable, "-m", *run], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "champion: genome" in result.stdout and "fitness 500" in result.stdout
    port = str(free_port())  # 5000 is an example port; over TCP two generations show the flow
    started = [procs.start(name, "-m", *[port if arg == "5000" else arg for arg in argv], cwd=tmp_path)
               for name, argv in (("master", [*master, "--generations", "2"]), ("worker", worker))]
    for proc in started:
        assert proc.wait(timeout=300) == 0, procs.log(proc)
    assert "champion: genome" in procs.log(started[0]) and "after 2 generations" in procs.log(started[0])
