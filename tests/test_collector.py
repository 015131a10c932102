"""The cycle collector is kept off what lived before the first generation (neatify.runtime.collector)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_the_collector_is_frozen_once_per_process_unless_opted_out():
    script = ("import gc\nfrom neatify import Population\nfrom neatify.runtime.collector import freeze_once\n"
              "pop = Population(pop_size=20, seed=1)\n"
              "pop.run_generation(lambda gs: [setattr(g, 'fitness', 1.0) for g in gs])\n"
              "print(gc.get_freeze_count() > 0, freeze_once())")
    for env, expected in (({}, "True False"), ({"NEATIFY_GC_FREEZE": "0"}, "False False")):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                             env={**os.environ, **env})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == expected.split()
