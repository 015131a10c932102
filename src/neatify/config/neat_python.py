"""Read a neat-python INI configuration as an ``EvolutionConfig``: ``EvolutionConfig.from_neat_python(path)``.

Every neat-python key with a NEATify equivalent is mapped (docs/usage.md has the table); keys
whose value matches what NEATify always does are accepted silently; the rest are named in one
``UserWarning``, with what to do instead where there is something. The compatibility threshold is
carried over to NEATify's distance scale (``DISTANCE_SCALE``, derived in docs/usage.md).
"""

from __future__ import annotations

import configparser
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neatify.config.errors import ConfigError


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError(f"not a boolean: {text!r}")
    return lowered in ("true", "1", "yes", "on")


ACTIVATION_NAMES = {"sigmoid": "neat_sigmoid", "tanh": "tanh", "sin": "sin", "gauss": "gauss", "relu": "relu",
                    "identity": "identity", "abs": "abs", "clamped": "clamped"}
"""neat-python activation -> NEATify activation. neat-python steepens three of them: its sigmoid is
1/(1+e^(-5x)) (NEATify's neat_sigmoid: 4.9x, the paper's), its tanh is tanh(2.5x), its sin sin(5x)."""


def _activation(text: str) -> str:
    if text not in ACTIVATION_NAMES:
        raise ValueError(f"no NEATify equivalent of activation {text!r}; known: {', '.join(ACTIVATION_NAMES)}")
    return ACTIVATION_NAMES[text]


def _initial_connection(text: str) -> str:
    """neat-python's modes; with no hidden nodes at start the _direct/_nodirect variants coincide."""
    mode, _, fraction = text.strip().partition(" ")
    base = {"unconnected": "none", "fs_neat_nohidden": "fs_neat", "fs_neat_hidden": "fs_neat",
            "full_nodirect": "full", "full_direct": "full", "partial_nodirect": "partial",
            "partial_direct": "partial"}.get(mode, mode)
    return f"{base} {fraction.strip()}" if fraction else base


DISTANCE_SCALE = 1.5
"""neat-python's compatibility distance over NEATify's for the same two genomes, gene counts normalised
alike: neat-python adds to the connection-gene term a node-gene term of the same form (bias differences
and disjoint nodes over the node count), which NEATify's distance does not have, so the ratio is about
1 to 2. Measured and chosen in docs/usage.md, "The compatibility threshold: mapped, not steered"."""


def _threshold(text: str) -> float:
    """neat-python's compatibility threshold, on NEATify's distance scale."""
    return float(text) / DISTANCE_SCALE


MAPPED: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "pop_size": (("population_size",), int),
    "activation_default": (("activation_default",), _activation),
    "activation_options": (("activation_options",), lambda text: [_activation(t) for t in text.split()]),
    "activation_mutate_rate": (("prob_mutate_activation",), float),
    "bias_init_stdev": (("bias_init_stdev",), float),
    "bias_max_value": (("bias_max_value",), float),
    "bias_min_value": (("bias_min_value",), float),
    "bias_mutate_power": (("bias_mutation_power",), float),
    "bias_mutate_rate": (("prob_mutate_bias",), float),
    "bias_replace_rate": (("prob_replace_bias",), float),
    "compatibility_disjoint_coefficient": (("c1", "c2"), float),
    "compatibility_weight_coefficient": (("c3",), float),
    "conn_add_prob": (("prob_add_connection",), float),
    "conn_delete_prob": (("prob_delete_connection",), float),
    "enabled_mutate_rate": (("prob_toggle_enable",), float),
    "feed_forward": (("allow_recurrent",), lambda text: not _bool(text)),
    "initial_connection": (("initial_connection",), _initial_connection),
    "node_add_prob": (("prob_add_node",), float),
    "node_delete_prob": (("prob_delete_node",), float),
    "weight_init_stdev": (("weight_init_stdev",), float),
    "weight_max_value": (("weight_max_value",), float),
    "weight_min_value": (("weight_min_value",), float),
    "weight_mutate_power": (("weight_mutation_power",), float),
    "weight_mutate_rate": (("prob_mutate_weight",), float),
    "weight_replace_rate": (("prob_replace_weight",), float),
    "compatibility_threshold": (("compatibility_threshold",), _threshold),
    "max_stagnation": (("max_stagnation",), int),
    "species_elitism": (("species_elitism",), int),
    "elitism": (("elitism_count",), int),
    "survival_threshold": (("survival_threshold",), float),
    "min_species_size": (("min_species_size",), int),
}
"""neat-python key -> the EvolutionConfig fields it sets, and how its text is read."""

NEUTRAL: dict[str, Any] = {
    "aggregation_default": "sum", "aggregation_options": "sum", "aggregation_mutate_rate": 0.0,
    "bias_init_mean": 0.0, "bias_init_type": "gaussian", "weight_init_mean": 0.0, "weight_init_type": "gaussian",
    "response_init_type": "gaussian",
    "response_init_mean": 1.0, "response_init_stdev": 0.0, "response_mutate_rate": 0.0,
    "response_replace_rate": 0.0, "enabled_default": True, "enabled_rate_to_true_add": 0.0,
    "enabled_rate_to_false_add": 0.0, "num_hidden": 0, "species_fitness_func": "max",
    "single_structural_mutation": False, "structural_mutation_surer": "default", "reset_on_extinction": None,
}
"""Keys NEATify has no setting for, and the value that matches what it always does."""

IRRELEVANT = {"response_mutate_power", "response_max_value", "response_min_value"}
"""Keys that matter only when a NEUTRAL key has another value (that key is then warned about)."""

ELSEWHERE = {
    "fitness_threshold": "pass fitness_threshold= to Population.run()",
    "num_inputs": "pass num_inputs= to Population()",
    "num_outputs": "pass num_outputs= to Population()",
    "fitness_criterion": "NEATify maximises fitness",
    "no_fitness_termination": "Population.run() stops at fitness_threshold only when you give one",
}
"""Keys that belong to the run rather than to the evolution settings, and where they go."""

NEAT_PYTHON_BEHAVIOUR: dict[str, Any] = {"elitism_min_species_size": 0, "prob_crossover": 1.0,
                                         "interspecies_mating_rate": 0.0, "target_species": 0,
                                         "normalize_min_genes": 1}
"""Settings where neat-python behaves differently from NEATify's defaults: elites kept in every
species whatever its size, every offspring bred by crossover (of two parents, or one with itself),
parents from one species, a fixed compatibility threshold, and distances divided by the larger
genome's gene count however small (the NEAT paper divides by 1 below 20 genes)."""


def _same(text: str, value: Any) -> bool:
    """Whether an INI value means ``value`` (compared as the type of ``value``)."""
    try:
        if isinstance(value, bool):
            return _bool(text) == value
        if isinstance(value, (int, float)):
            return float(text) == value
    except ValueError:
        return False
    return text.strip().lower() == value


def neat_python_values(path: str | Path) -> dict[str, Any]:
    """``EvolutionConfig`` field values from a neat-python config file (see the module docstring)."""
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a neat-python config: {exc}") from None
    values, unmapped = dict(NEAT_PYTHON_BEHAVIOUR), []
    for section in parser.sections():
        for key, text in parser.items(section):
            if key in MAPPED:
                names, read = MAPPED[key]
                try:
                    values.update(dict.fromkeys(names, read(text)))
                except ValueError as exc:
                    raise ConfigError(f"{path}: [{section}] {key} = {text}: {exc}") from None
            elif key in ELSEWHERE:
                unmapped.append(f"{key} = {text} ({ELSEWHERE[key]})")
            elif key in IRRELEVANT or (key in NEUTRAL and _same(text, NEUTRAL[key])):
                continue
            else:
                unmapped.append(f"{key} = {text} (no NEATify equivalent)" if key in NEUTRAL else
                                f"{key} = {text} (unknown key)")
    if unmapped:
        warnings.warn(f"{path}: neat-python settings not carried over: {'; '.join(unmapped)}", stacklevel=3)
    return values
