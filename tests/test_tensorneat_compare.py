"""benchmarks/tensorneat_compare.py at tiny sizes: its NEATify and neat-python side runs for real;
the TensorNEAT side only where an interpreter that imports tensorneat is named by
NEATIFY_TENSORNEAT_PYTHON (TensorNEAT is not on the package index; the script's docstring says how).
Also benchmarks/padded_limits.py, the rule that fits a padded library's genome limits to a run."""

import argparse
import math
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from padded_limits import Limits, binds, fit_limits, fitted  # noqa: E402

HEADROOM = Limits(1, 2)


class PaddedGrowth:
    """A padded library's run in miniature: its genomes would grow to ``natural`` (or, where its random draws
    depend on the padding, to ``under[limits]``) but never past the limits."""

    def __init__(self, natural: Limits, under: dict[Limits, Limits] | None = None) -> None:
        self.natural, self.under, self.calls = natural, under or {}, []

    def __call__(self, limits: Limits) -> tuple[str, Limits]:
        self.calls.append(limits)
        want = self.under.get(limits, self.natural)
        return f"run {len(self.calls)}", Limits(min(want.nodes, limits.nodes), min(want.conns, limits.conns))


def test_fitted_limits_leave_exactly_one_generations_headroom():
    assert fitted(Limits(8, 11), HEADROOM) == Limits(9, 13)
    assert not binds(Limits(8, 11), Limits(9, 13), HEADROOM)
    assert binds(Limits(8, 12), Limits(9, 13), HEADROOM) and binds(Limits(9, 11), Limits(9, 13), HEADROOM)


def test_fit_takes_the_largest_genome_of_the_first_run_and_checks_the_fitted_run():
    run = PaddedGrowth(Limits(8, 11))
    fit = fit_limits(run, Limits(50, 100), HEADROOM)
    assert (fit.first, fit.first_limits, fit.limits, fit.result, fit.runs) == ("run 1", Limits(50, 100),
                                                                              Limits(9, 13), "run 2", 2)
    assert run.calls == [Limits(50, 100), Limits(9, 13)]
    assert "fitted limits 9 nodes x 13 connections" in fit.describe(HEADROOM)


def test_fit_widens_a_first_run_that_binds_and_refits_a_fitted_run_that_comes_too_close():
    run = PaddedGrowth(Limits(60, 30), under={Limits(61, 32): Limits(58, 40)})
    fit = fit_limits(run, Limits(50, 100), HEADROOM)
    assert run.calls == [Limits(50, 100), Limits(100, 200), Limits(61, 32), Limits(61, 34)]
    assert fit.first_limits == Limits(100, 200) and fit.limits == Limits(61, 34) and fit.runs == 4


def test_fit_names_the_limits_when_it_cannot_settle():
    with pytest.raises(RuntimeError, match="still binds at 100 nodes x 100 connections"):
        fit_limits(PaddedGrowth(Limits(10**6, 1)), Limits(50, 50), HEADROOM, max_runs=2)


neat = pytest.importorskip("neat")
import population_scale  # noqa: E402
import tensorneat_compare  # noqa: E402


def _args(**overrides) -> argparse.Namespace:
    settings = dict(warmup=1, seed=1, cpu=max(os.sched_getaffinity(0)), tensorneat_python=None,
                    cartpole_neat_python_max=1_000, no_variants=False, first_limits=[50, 100])
    return argparse.Namespace(**{**settings, **overrides})


@pytest.mark.slow
@pytest.mark.parametrize("task", ["xor", "cartpole"])
def test_matched_comparison_runs_both_libraries_and_says_tensorneat_was_skipped(task, capsys):
    tensorneat_compare.compare_matched(task, 16, 2, _args(no_variants=task == "cartpole"))
    out = capsys.readouterr().out
    assert f"{task} pop 16, matched settings" in out and "species target/cap 10" in out
    assert "  NEATify " in out and "  neat-python " in out
    assert out.count("CPU ms/gen") == (4 if task == "xor" else 2)
    assert ("NEATify, fixed threshold" in out) == (task == "xor")
    assert "NEATify/neat-python" in out and "TensorNEAT   skipped: no --tensorneat-python" in out


@pytest.mark.slow
def test_the_matched_settings_reach_neat_python():
    seen = {}

    def fitness(genomes, config):
        seen.update(sigmoid=config.genome_config.activation_defs.get("sigmoid")(1.0),
                    power=config.genome_config.weight_mutate_power, bias=config.genome_config.bias_mutate_rate)
        for _, genome in genomes:
            genome.fitness = 0.0

    run = population_scale.neat_python_run(20, 2, 1, {}, tensorneat_compare.neat_python_matched({}), fitness)
    assert len(run.generation_s) == len(run.species) == 2
    assert seen == {"sigmoid": pytest.approx(1 / (1 + math.exp(-1))), "power": 1.0, "bias": 0.3}
    with pytest.raises(ValueError, match="genome_config.conn_add_probability"):
        population_scale.neat_python_run(20, 1, 1, {}, {"genome_config": {"conn_add_probability": 0.5}})


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NEATIFY_TENSORNEAT_PYTHON"),
                    reason="no TensorNEAT interpreter (set NEATIFY_TENSORNEAT_PYTHON)")
def test_tensorneat_side_runs_in_its_own_interpreter_and_reports_its_largest_genome():
    python = os.environ["NEATIFY_TENSORNEAT_PYTHON"]
    spec = dict(task="xor", pop_size=20, generations=2, seed=1, species=10, max_nodes=5, max_conns=6)
    result = tensorneat_compare.tensorneat_in_subprocess(python, _args().cpu, spec)
    assert len(result["generation_s"]) == len(result["species"]) == 2
    assert result["compile_s"] > 0 and 1 <= max(result["species"]) <= 10
    assert [3, 2] <= result["largest"] and result["largest"][0] <= 5 and result["largest"][1] <= 6
