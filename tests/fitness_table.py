"""The fitness functions every backend is tested with (tests/test_evaluation.py): good, faulty on one
genome in each way the contract knows, and one that needs setup state. Module level, so pool processes,
Ray actors and ``neatify worker fitness_table:NAME`` all import them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
