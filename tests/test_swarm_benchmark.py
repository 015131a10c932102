"""benchmarks/swarm.py: simulated workers over real sockets against a real master child process."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from swarm import run_point  # noqa: E402


@pytest.mark.timeout(30)
def test_five_simulated_workers_register_and_reproduce_the_local_run():
    result = run_point(pop_size=20, workers=5, generations=2, timeout=20.0)
    assert result.registered == 5
    assert result.genomes_evaluated == 20 * 3, "one untimed and two timed generations, each genome once"
    assert result.identical, "the distributed run must end in the local run's state"
    assert result.distributed_s > 0 and result.local_s > 0
