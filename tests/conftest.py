import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def local_ray():
    """A real local 2-CPU Ray on loopback, started once for the session (skips when Ray is not installed)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(  # workers import the tests' modules and
                 filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}})  # the neatify under test
    yield ray
    ray.shutdown()
