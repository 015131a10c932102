"""The checks of the config keys for selection beyond one fitness number (``neatify.objectives``)."""

from __future__ import annotations

import re
from typing import Any

SELECTIONS = ("fitness", "novelty", "pareto", "blend")
ARCHIVE_RULES = ("threshold", "random", "none")
"""How behaviours enter the novelty archive: above a dynamic novelty threshold (the paper's rule), each with
a fixed probability, or never."""
BEHAVIOUR_OBJECTIVE = re.compile(r"behaviour\[(\d+)\]$")


def objective_problem(name: str, behaviour_size: int) -> str | None:
    """Why ``name`` is not an objective: ``fitness``, ``novelty``, ``size`` (hidden nodes plus enabled
    connections, minimised) or ``behaviour[i]`` (value ``i`` of the behaviour, maximised); None when it is."""
    if name in ("fitness", "size"):
        return None
    if name == "novelty":
        return None if behaviour_size else "objective 'novelty' needs behaviour_size > 0"
    found = BEHAVIOUR_OBJECTIVE.match(name)
    if found is None:
        return f"unknown objective {name!r} (fitness, novelty, size or behaviour[i])"
    if int(found.group(1)) >= behaviour_size:
        return f"objective {name!r} is beyond behaviour_size {behaviour_size}"
    return None


def objectives_problem(config: Any) -> str | None:
    """Why the selection keys of ``config`` (an ``EvolutionConfig``) do not fit together; None when they do."""
    if config.selection not in SELECTIONS:
        return f"selection must be one of {', '.join(SELECTIONS)}, got {config.selection!r}"
    if config.novelty_archive not in ARCHIVE_RULES:
        return f"novelty_archive must be one of {', '.join(ARCHIVE_RULES)}, got {config.novelty_archive!r}"
    for name in ("behaviour_size", "novelty_threshold", "novelty_threshold_min", "novelty_raise_count", "elite_cells"):
        if getattr(config, name) < 0:
            return f"{name} must not be negative, got {getattr(config, name)!r}"
    for name in ("novelty_k", "novelty_stall_generations"):
        if getattr(config, name) < 1:
            return f"{name} must be at least 1, got {getattr(config, name)!r}"
    if config.selection == "novelty" and not config.behaviour_size:
        return "selection 'novelty' needs behaviour_size > 0 (the fitness function sets genome.behaviour)"
    if config.selection in ("pareto", "blend"):
        if not config.objectives:
            return f"selection {config.selection!r} needs at least one objective"
        for name in config.objectives:
            found = objective_problem(name, config.behaviour_size)
            if found:
                return f"objectives: {found}"
    if config.blend_weights and len(config.blend_weights) != len(config.objectives):
        return (f"blend_weights has {len(config.blend_weights)} weights for {len(config.objectives)} objectives "
                f"(one each, or none for 1 each)")
    if config.elite_cells and not config.behaviour_size:
        return "elite_cells needs behaviour_size > 0 (the archive of elites is a grid over behaviours)"
    if config.elite_bounds and len(config.elite_bounds) != 2 * config.behaviour_size:
        return (f"elite_bounds has {len(config.elite_bounds)} values; it needs a low and a high for each of the "
                f"{config.behaviour_size} behaviour values")
    return None
