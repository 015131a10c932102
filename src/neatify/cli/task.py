"""A run file's ``[task]`` table: a fitness function named by data, so ``neatify run`` and ``neatify worker``
need no Python file. ``[task] gym = "CartPole-v1"`` (and ``GymEvaluator``'s options) is the one kind so far."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_GYM_OPTIONS: dict[str, tuple[type, ...]] = {
    "gym": (str,), "episodes": (int,), "max_steps": (int,), "seed": (int,), "normalize": (bool,), "resample": (bool,),
    "env_kwargs": (dict,), "output_range": (list,), "error_fitness": (int, float), "native": (bool,),
}
"""The keys of ``[task]`` and their TOML types (``seed`` defaults to ``[run] seed``)."""


class TaskError(ValueError):
    """A ``[task]`` table that names no task the command can build (the message names the key)."""


def read_task(path: str | Path) -> dict[str, Any] | None:
    """The run file's ``[task]`` table, or None when it has none (the file is known to be valid TOML)."""
    from neatify.config import tomllib

    with open(path, "rb") as fh:
        return tomllib.load(fh).get("task")


def task_fitness(task: dict[str, Any], run_seed: int | None, shape: tuple[int, int]) -> Callable[..., Any]:
    """The fitness function ``task`` names, checked against the run's (num_inputs, num_outputs)."""
    unknown = sorted(set(task) - set(_GYM_OPTIONS))
    if unknown:
        raise TaskError(f"[task]: unknown key(s): {', '.join(unknown)}; expected {', '.join(_GYM_OPTIONS)}")
    if "gym" not in task:
        raise TaskError("[task]: missing gym = \"ENV-ID\" (a gymnasium environment id)")
    for key, value in task.items():
        if not isinstance(value, _GYM_OPTIONS[key]) or (isinstance(value, bool) and bool not in _GYM_OPTIONS[key]):
            raise TaskError(f"[task]: {key} must be {' or '.join(t.__name__ for t in _GYM_OPTIONS[key])}, "
                            f"got {value!r}")
    options = {key: value for key, value in task.items() if key != "gym"}
    options.setdefault("seed", run_seed or 0)
    if "output_range" in options:
        options["output_range"] = tuple(options["output_range"])
    try:
        from neatify.gym import GymEvaluator

        evaluator = GymEvaluator(task["gym"], **options)
        needed = evaluator.shape()
    except ImportError as exc:
        raise TaskError(f"[task] gym = {task['gym']!r}: {exc}") from None
    except Exception as exc:  # gymnasium's unknown id, a missing physics engine, a bad option: one line
        raise TaskError(f"[task] gym = {task['gym']!r}: {type(exc).__name__}: {exc}") from None
    if needed != shape:
        raise TaskError(f"[task] gym = {task['gym']!r} needs num_inputs = {needed[0]} and num_outputs = "
                        f"{needed[1]} in [run]; the run file has {shape[0]} and {shape[1]}")
    return evaluator


def run_file_fitness(path: str | Path, fitness: str | None, run_seed: int | None,
                     shape: tuple[int, int]) -> Callable[..., Any] | None:
    """The fitness of the run file's ``[task]`` table, None when it has none; ``fitness`` is its ``[run] fitness``
    (a file may name one or the other)."""
    task = read_task(path)
    if task is None:
        return None
    if fitness is not None:
        raise TaskError(f"{path}: give [run] fitness or a [task] table, not both")
    return task_fitness(task, run_seed, shape)
