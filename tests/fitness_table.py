"""The table every backend is tested with (tests/test_evaluation.py, tests/test_ray.py): fitness functions
good, faulty on one genome in each way the contract knows, or needing setup state (module level, so pool
processes, Ray actors and ``neatify worker fitness_table:NAME`` import them), and what a serial
``Population`` makes of each, which every backend must match."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neatify import EvaluationError, Population

TARGET = 3
"""The genome the faulty functions single out (a fresh Population numbers its genomes from 0)."""

OFFSET = 100.0
"""What ``make_state`` hands ``with_state``."""


def score(genome: Any, offset: float = 0.0) -> float:
    """A deterministic fitness that tells genomes apart."""
    return offset + genome.id + 0.25 * len(genome.connections)


def _all_but_target(genomes: list, bad: Callable[[], Any]) -> None:
    for genome in genomes:
        genome.fitness = bad() if genome.id == TARGET else score(genome)


def good(genomes: list) -> None:
    for genome in genomes:
        genome.fitness = score(genome)


def raising(genomes: list) -> None:
    for genome in genomes:
        if genome.id == TARGET:
            raise ZeroDivisionError(f"deliberate failure on genome {genome.id}")
        genome.fitness = score(genome)


def unset(genomes: list) -> None:
    _all_but_target(genomes, lambda: None)


def nan(genomes: list) -> None:
    _all_but_target(genomes, lambda: float("nan"))


def tensor(genomes: list) -> None:
    import torch

    _all_but_target(genomes, lambda: torch.tensor(1.5))


def boolean(genomes: list) -> None:
    _all_but_target(genomes, lambda: True)


def with_state(genomes: list, state: dict) -> None:
    for genome in genomes:
        genome.fitness = score(genome, state["offset"])


def make_state() -> dict:
    return {"offset": OFFSET}


POP, SEED = 12, 4
ERROR_FITNESS = -1.0
FAULTY = {  # case: what the error's last line says
    "raising": f"ZeroDivisionError: deliberate failure on genome {TARGET}",
    "unset": f"FitnessError: genome {TARGET} has no fitness: the fitness function must set genome.fitness on "
             "every genome it is given",
    "nan": f"FitnessError: genome {TARGET} has non-finite fitness nan",
    "tensor": f"FitnessError: genome {TARGET} has fitness tensor(1.5000) of type Tensor; expected a float "
              "(use .item() on a tensor)",
    "boolean": f"FitnessError: genome {TARGET} has fitness True of type bool; expected a float",
}
CASES = ("good", "with_state", *FAULTY)


def outcome(fitness_fn) -> tuple:
    """One generation of a fresh population: ``("fitness", {id: value})`` or ``("error", genome id, last line)``."""
    pop = Population(POP, 2, 1, seed=SEED)
    try:
        pop.run_generation(fitness_fn)
    except Exception as exc:
        text = exc.remote_traceback if isinstance(exc, EvaluationError) else f"{type(exc).__name__}: {exc}"
        return "error", getattr(exc, "genome_id", None), text.strip().splitlines()[-1]
    return "fitness", {g.id: g.fitness for g in pop.genomes}


def serial(name: str) -> tuple:
    """The case run by a plain ``Population`` (the state handed over directly)."""
    function = globals()[name]
    if name == "with_state":
        return outcome(lambda genomes: function(genomes, make_state()))
    return outcome(function)


def expected(name: str, error_fitness: float | None = None) -> tuple:
    """The serial outcome, a raised exception pinned to the genome it names as the backends pin it; with
    ``error_fitness``, the good values with the faulty genome's replaced."""
    if error_fitness is not None:
        values = serial("good")[1]
        return "fitness", {**values, TARGET: error_fitness}
    result = serial(name)
    if result[0] == "error" and result[1] is None:
        assert f"genome {TARGET}" in result[2]
        return "error", TARGET, result[2]
    return result


def setup_of(name: str) -> Callable[[], dict] | None:
    """The ``setup`` an evaluator needs for the case."""
    return make_state if name == "with_state" else None
