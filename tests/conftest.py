"""Fixtures shared by the test files, and the Hypothesis profiles: ``dev`` by default, ``ci`` (derandomised, so a
CI run is the same every time) with HYPOTHESIS_PROFILE=ci, as .ci/run sets it."""

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

from distributed_helpers import HOST, Processes  # noqa: E402 (needs the path above)

# No deadline and no too-slow check: both time the machine (compiled loops compile on a first call), and a loaded
# machine is no failing case.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def procs(tmp_path):
    """Child processes of a test (workers, masters), killed and reaped at its end; logs in tmp_path."""
    with Processes(tmp_path) as processes:
        yield processes


@pytest.fixture
def master():
    """Factory of in-process masters (``DistributedPopulation``) on a free loopback port, shut down at teardown:
    ``make(pop_size=40, seed=7, num_inputs=2, num_outputs=1, **DistributedConfig fields)``."""
    from neatify.distributed import DistributedConfig, DistributedPopulation

    made = []

    def make(pop_size: int = 40, seed: int = 7, num_inputs: int = 2, num_outputs: int = 1,
             **overrides) -> DistributedPopulation:
        # shutdown_linger 0: these tests kill workers on purpose, and none of them comes back to be told the run is
        # over (the linger has tests of its own), so waiting for them would only add 10 s to each teardown
        settings = dict(host=HOST, port=0, heartbeat_interval=0.2, task_timeout=10.0, worker_wait_timeout=30.0,
                        shutdown_linger=0.0)
        config = DistributedConfig(**{**settings, **overrides})
        pop = DistributedPopulation(pop_size, num_inputs, num_outputs, seed=seed, distributed_config=config)
        made.append(pop)
        return pop

    yield make
    for pop in made:
        pop.shutdown()
