"""benchmarks/tensorneat_compare.py at tiny sizes: its NEATify and neat-python side runs for real;
the TensorNEAT side only where an interpreter that imports tensorneat is named by
NEATIFY_TENSORNEAT_PYTHON (TensorNEAT is not on the package index; the script's docstring says how)."""

import argparse
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("neat")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import population_scale  # noqa: E402
import tensorneat_compare  # noqa: E402


def _args(**overrides) -> argparse.Namespace:
    settings = dict(warmup=1, seed=1, cpu=max(os.sched_getaffinity(0)), tensorneat_python=None,
                    cartpole_neat_python_max=1_000)
    return argparse.Namespace(**{**settings, **overrides})


@pytest.mark.parametrize("task", ["xor", "cartpole"])
def test_matched_comparison_runs_both_libraries_and_says_tensorneat_was_skipped(task, capsys):
    tensorneat_compare.compare_matched(task, 16, 2, _args())
    out = capsys.readouterr().out
    assert f"{task} pop 16, matched settings" in out and "species target/cap 10" in out
    assert "  NEATify " in out and "  neat-python " in out and out.count("ms/gen") == 2
    assert "NEATify/neat-python" in out and "TensorNEAT   skipped: no --tensorneat-python" in out


def test_the_matched_settings_reach_neat_python():
    run = population_scale.neat_python_run(20, 2, 1, {}, tensorneat_compare.NEAT_PYTHON_MATCHED)
    assert len(run.generation_s) == len(run.species) == 2
    with pytest.raises(ValueError, match="genome_config.conn_add_probability"):
        population_scale.neat_python_run(20, 1, 1, {}, {"genome_config": {"conn_add_probability": 0.5}})


@pytest.mark.skipif(not os.environ.get("NEATIFY_TENSORNEAT_PYTHON"),
                    reason="no TensorNEAT interpreter (set NEATIFY_TENSORNEAT_PYTHON)")
def test_tensorneat_side_runs_in_its_own_interpreter():
    python = os.environ["NEATIFY_TENSORNEAT_PYTHON"]
    result = tensorneat_compare.tensorneat_in_subprocess(python, _args().cpu, "xor", 20, 2, 1, 10)
    assert len(result["generation_s"]) == len(result["species"]) == 2
    assert result["compile_s"] > 0 and 1 <= max(result["species"]) <= 10
