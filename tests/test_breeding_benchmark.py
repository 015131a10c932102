"""benchmarks/breeding.py at a tiny size: it times the functions the population really calls."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_breeding_benchmark_prints_reproduce_and_speciation_times():
    result = subprocess.run([sys.executable, "benchmarks/breeding.py", "--sizes", "30", "--generations", "2",
                             "--warmup", "1", "--baseline", str(ROOT / "src")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [row[:2] for row in rows] == [["30", "baseline"], ["30", "this"]]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows), result.stdout
