"""The HyperNEAT and ES-HyperNEAT examples run as a user runs them, at a tiny size, and say what they found."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> list[str]:
    """The example's output lines (it must exit 0)."""
    result = subprocess.run([sys.executable, f"examples/{name}", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.slow
def test_the_boxes_example_evolves_then_re_queries_the_champion_at_the_finer_resolution():
    lines = run_example("hyperneat_boxes.py", "--population", "12", "--generations", "2", "--scale", "33")
    assert re.match(r"after 2 generations \(24 evaluations\): fitness \d+\.\d\d", lines[0])
    assert re.match(r"found at 11x11: mean distance \d\.\d{3}, on the large box in \d+/75 trials", lines[1])
    assert re.match(r"re-queried at 33x33: mean distance \d\.\d{3}, on the large box in \d+/75 trials", lines[2])


@pytest.mark.slow
def test_the_es_hyperneat_maze_example_evolves_robots_and_describes_the_best_network():
    lines = run_example("es_hyperneat_maze.py", "--population", "8", "--generations", "2")
    assert lines[0] == "no robot reached the goal after 2 generations (16 evaluations)"
    found = re.match(r"best robot ended (\d+\.\d) units from the goal; its network: (\d+) hidden nodes placed "
                     r"by the CPPN, (\d+) connections", lines[1])
    assert found and 0.0 < float(found[1]) < 400.0
