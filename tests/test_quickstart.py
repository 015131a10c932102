"""The README's quick-start snippet, pasted as is, solves XOR."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_readme_snippet_solves_xor():
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "pop.run_generation(xor_fitness)" in snippet
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert float(last.rsplit("=", 1)[1]) > 3.9


def test_xor_example_solves_and_saves_champion(tmp_path):
    out = tmp_path / "champion.json"
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "xor_solve.py"), "--save", str(out)],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "Champion: genome" in result.stdout and out.exists()
