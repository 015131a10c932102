"""Evolution parameters as one validated dataclass, loadable from and savable to TOML.

Names follow the reference implementation where it had one; defaults follow the NEAT paper
(Stanley & Miikkulainen 2002) unless a comment says why they differ.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from neatify.activations import ACTIVATIONS
from neatify.config.errors import ConfigError, with_suggestion
from neatify.config.objectives import objectives_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


AUTO = "auto"
"""``target_species`` value that picks the target from the population size."""


AUTO_SPECIES_PER_LOG = 2.0
"""Species of the automatic target per unit of ln(population_size), chosen by measurement
(docs/benchmarks.md, "Population scale", and that page's git history)."""
AUTO_SPECIES_RANGE = (10, 30)
"""Least and most species the automatic target asks for."""


def auto_target_species(population_size: int) -> int:
    """The species target "auto" stands for: 2 ln(population_size) rounded, within [10, 30]
    (10 up to a population of 190, 14 at 1,000, 18 at 10,000, 23 at 100,000, 30 from 2.55 million)."""
    low, high = AUTO_SPECIES_RANGE
    return min(high, max(low, round(AUTO_SPECIES_PER_LOG * math.log(population_size))))


@dataclass
class EvolutionConfig:
    """Every knob of the NEAT algorithm, with the paper's values as defaults."""

    # --- population and selection ---
    population_size: int = 150
    """Genomes per generation (``Population(pop_size=...)`` overrides it)."""
    elitism_count: int = 1
    """Best members of a species copied unchanged into the next generation."""
    elitism_min_species_size: int = 5
    """A species needs more than this many members for its elites to be copied (paper: 5)."""
    survival_threshold: float = 0.2
    """Fraction of each species (best first) allowed to become parents."""
    min_species_size: int = 2
    """Offspring every surviving species gets at least."""
    prob_crossover: float = 0.75
    """Chance an offspring comes from crossover; otherwise it is a mutated copy (paper: 0.75)."""
    interspecies_mating_rate: float = 0.001
    """Chance a crossover's second parent comes from another species."""
    prob_inherit_disabled: float = 0.75
    """Chance a gene disabled in either parent stays disabled in the child."""

    # --- speciation ---
    compatibility_threshold: float = 3.0
    """Starting distance under which two genomes share a species (adapted toward target_species)."""
    target_species: int | str = AUTO
    """Number of species the threshold is steered toward each generation: "auto" (the default) steers
    toward ``auto_target_species(population_size)``, 10 to 30 species growing slowly with the
    population; 0 keeps the threshold fixed (as in neat-python, and the default before 2026-11-29)."""
    compatibility_threshold_step: float = 0.0
    """How the threshold moves when steering. 0 (the default): a generation more than 2x off the
    target is speciated again at other thresholds until it is not (``neatify.speciation.species.find_threshold``),
    then the threshold is multiplied by (species / target) ** 0.3, by at most x2 up and x0.8 down,
    and left alone while the count is within a factor 1.5 of the target (``adapt_threshold``).
    A positive value: added or subtracted once a generation, whatever the distance (the rule before
    2026-11-29, with 0.3)."""
    compatibility_threshold_min: float = 0.3
    """Floor for the adapted threshold."""
    c1: float = 1.0
    """Weight of excess genes in the compatibility distance."""
    c2: float = 1.0
    """Weight of disjoint genes in the compatibility distance."""
    c3: float = 0.4
    """Weight of the mean weight difference of matching genes."""
    normalize_min_genes: int = 20
    """Genomes with fewer connection genes than this use N=1 in the distance (paper: 20)."""

    # --- stagnation ---
    max_stagnation: int = 15
    """Generations without improvement after which a species may not reproduce."""
    species_elitism: int = 1
    """The best this many species are protected from stagnation."""
    population_stagnation: int = 0
    """Generations without a new best fitness in the whole population after which only the two
    best species breed, half the population each, all offspring copies of their champions, mutated
    but for one (the paper's "delta coding"; its source: 20); 0 turns it off."""

    # --- weights and biases ---
    prob_mutate_weight: float = 0.8
    """Chance an offspring's connection weights are mutated."""
    prob_replace_weight: float = 0.1
    """When mutating, chance a weight is replaced by a fresh value instead of perturbed."""
    weight_mutation_power: float = 1.0
    """Standard deviation of a weight perturbation (1.0 measured best on XOR: docs/benchmarks.md, "XOR")."""
    weight_init_stdev: float = 1.0
    """Standard deviation of a new weight."""
    weight_min_value: float = -30.0
    weight_max_value: float = 30.0
    prob_mutate_bias: float = 0.3
    """Chance an offspring's node biases are mutated (each bias then like a weight)."""
    prob_replace_bias: float = 0.1
    bias_mutation_power: float = 0.5
    bias_init_stdev: float = 1.0
    bias_min_value: float = -30.0
    bias_max_value: float = 30.0

    # --- structure ---
    prob_add_connection: float = 0.5
    """Chance an offspring gains a connection. The paper used 0.05 (0.3 for its large population);
    0.5 makes XOR need far fewer evaluations (docs/benchmarks.md, "XOR sample efficiency")."""
    prob_add_node: float = 0.05
    """Chance an offspring gains a node by splitting a connection (paper: 0.03)."""
    prob_delete_connection: float = 0.0
    prob_delete_node: float = 0.0
    prob_toggle_enable: float = 0.0
    """Chance per connection gene that its enabled flag flips."""
    prob_mutate_activation: float = 0.0
    """Chance per hidden node that its activation is redrawn from activation_options."""
    activation_default: str = "neat_sigmoid"
    """Activation of new hidden and output nodes (steepened sigmoid, as in the paper)."""
    activation_options: list[str] = field(default_factory=lambda: ["neat_sigmoid"])
    """Activations a mutation may choose from."""
    initial_connection: str = "full"
    """Connections of the first genomes: 'full' every input to every output; 'partial 0.5' a random
    half of those; 'fs_neat' one random input to every output (FS-NEAT); 'none' no connections."""
    allow_recurrent: bool = False
    """Allow connections that form cycles; otherwise every genome stays feed-forward."""
    add_connection_attempts: int = 20
    """Random node pairs tried before an add-connection mutation gives up."""

    # --- beyond one fitness number (neatify.objectives; docs/usage.md, "Beyond one fitness number") ---
    behaviour_size: int = 0
    """Values in each genome's ``behaviour``, which the fitness function then sets beside its fitness; 0: none."""
    selection: str = "fitness"
    """What NEAT selects on: "fitness", "novelty", "pareto" (NSGA-II ranking of ``objectives``) or "blend"
    (their weighted sum); all but "fitness" need behaviours or name objectives."""
    objectives: list[str] = field(default_factory=lambda: ["fitness", "novelty"])
    """The objectives of "pareto" and "blend": fitness, novelty, size (minimised) or behaviour[i]."""
    blend_weights: list[float] = field(default_factory=list)
    """One weight per objective for "blend" (empty: 1 each)."""
    novelty_k: int = 15
    """Nearest neighbours novelty averages over (the paper's 15)."""
    novelty_archive: str = "threshold"
    """How behaviours enter the novelty archive: "threshold" (dynamic, the paper's), "random" or "none"."""
    novelty_threshold: float = 1.0
    """Starting novelty above which a behaviour enters the archive (in behaviour units; adapted)."""
    novelty_threshold_min: float = 0.0
    """Floor the adapted threshold never falls below."""
    novelty_stall_generations: int = 10
    """Generations adding nothing after which the threshold falls by 5 %."""
    novelty_raise_count: int = 4
    """More behaviours added in one generation than this raise the threshold by 20 %."""
    prob_archive_add: float = 0.01
    """Chance each behaviour enters the archive under the "random" rule."""
    elite_cells: int = 0
    """Cells per behaviour dimension of the archive of elites kept beside the run; 0: none."""
    elite_bounds: list[float] = field(default_factory=list)
    """low, high of each behaviour dimension for the archive of elites, flat (empty: 0, 1 each)."""
    # --- weight refinement (neatify.breeding.refine) ---
    refine_samples: int = 0
    """Genomes of each generation drawn by a CMA-ES around the champion's weights (same topology, new
    weights), the other ``population_size - refine_samples`` bred by NEAT; 0 (the default) turns the
    search off. At least 2, below ``population_size`` (restarts may grow it: ``refine_growth``)."""
    refine_sigma: float = 0.5
    """The weight search's step size when it starts on a new topology."""
    refine_patience: int = 20
    """Generations without a better sample after which the weight search starts afresh: the champion's
    topology, random weights, step sizes ``refine_sigma`` (a search whose steps shrank onto a local optimum)."""
    refine_full_limit: int = 100
    """A weight search over at most this many numbers (enabled weights and biases) adapts a full covariance
    matrix, learning which weights move together; a larger one only a step size per number (sep-CMA-ES),
    whose cost grows linearly rather than with the cube."""
    refine_tolerance: float = 0.0
    """A sample beating the search's best by at most this fraction of it counts as no progress toward
    ``refine_patience`` (0: any rise is progress); a search creeping up by a step or two restarts too."""
    refine_growth: float = 1.0
    """Each restart of a stalled search multiplies its samples a generation by this (2: IPOP-CMA-ES, whose
    larger samples search more globally); 1 keeps ``refine_samples``. The generation grows with them."""
    refine_max_samples: int = 1000
    """The most samples a generation the restarts may grow to."""

    def __post_init__(self) -> None:
        self.validate()
        object.__setattr__(self, "_constructed", True)

    def __setattr__(self, name: str, value: Any) -> None:
        """Setting a field after construction is validated like a constructor argument (on error the
        old value stays); an unknown name is refused, with the closest field name."""
        if name not in _FIELD_TYPES:
            raise ConfigError(f"unknown config key: {with_suggestion(name, list(_FIELD_TYPES))}")
        if not self.__dict__.get("_constructed"):
            object.__setattr__(self, name, value)
            return
        old = getattr(self, name)
        object.__setattr__(self, name, value)
        try:
            self.validate()
        except ConfigError:
            object.__setattr__(self, name, old)
            raise

    def validate(self) -> None:
        """Raise ConfigError naming the first key whose value is of the wrong type or out of range."""
        for f in fields(self):
            value = getattr(self, f.name)
            expected = _FIELD_TYPES[f.name]
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if expected is list:
                value = _checked_list(f.name, value, f.type == "list[float]")
                object.__setattr__(self, f.name, value)
            elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"{f.name} must be {expected.__name__}, got {value!r}")
            if expected is float and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be finite, got {value!r}")
            if f.name.startswith("prob_") or f.name in ("survival_threshold", "interspecies_mating_rate"):
                if not 0.0 <= value <= 1.0:
                    raise ConfigError(f"{f.name} is a probability and must be in [0, 1], got {value!r}")
        for name in ("population_size", "add_connection_attempts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("elitism_count", "elitism_min_species_size", "min_species_size",
                     "max_stagnation", "species_elitism", "population_stagnation", "normalize_min_genes",
                     "compatibility_threshold", "compatibility_threshold_step", "compatibility_threshold_min",
                     "c1", "c2", "c3", "weight_mutation_power", "weight_init_stdev",
                     "bias_mutation_power", "bias_init_stdev"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}")
        target = self.target_species
        if target != AUTO and (not isinstance(target, int) or isinstance(target, bool) or target < 0):
            raise ConfigError(f"target_species must be a non-negative integer or {AUTO!r}, got {target!r}")
        for low, high in (("weight_min_value", "weight_max_value"), ("bias_min_value", "bias_max_value")):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(f"{low} ({getattr(self, low)}) must not exceed {high} ({getattr(self, high)})")
        if self.activation_default not in ACTIVATIONS:
            raise ConfigError(f"activation_default: unknown activation {self.activation_default!r}; "
                              f"known: {', '.join(sorted(ACTIVATIONS))}")
        if not self.activation_options:
            raise ConfigError("activation_options must name at least one activation")
        for name in self.activation_options:
            if name not in ACTIVATIONS:
                raise ConfigError(f"activation_options: unknown activation {name!r}; "
                                  f"known: {', '.join(sorted(ACTIVATIONS))}")
        found = objectives_problem(self)
        if found:
            raise ConfigError(found)
        self._validate_refine()
        if not _valid_initial_connection(self.initial_connection):
            raise ConfigError(f"initial_connection must be 'full', 'partial P' (P in [0, 1]), 'fs_neat' or 'none', "
                              f"got {self.initial_connection!r}")

    def _validate_refine(self) -> None:
        """ConfigError naming the ``refine_*`` field that is out of range."""
        samples = self.refine_samples
        if samples != 0 and not 2 <= samples < self.population_size:
            raise ConfigError(f"refine_samples must be 0 (off) or from 2 to population_size - 1 "
                              f"({self.population_size - 1}), got {samples!r}")
        if self.refine_sigma <= 0:
            raise ConfigError(f"refine_sigma must be positive, got {self.refine_sigma!r}")
        for name, least in (("refine_patience", 1), ("refine_full_limit", 0), ("refine_tolerance", 0),
                            ("refine_growth", 1), ("refine_max_samples", 2)):
            if getattr(self, name) < least:
                raise ConfigError(f"{name} must be at least {least}, got {getattr(self, name)!r}")

    def species_target(self) -> int:
        """The species count the threshold is steered toward (``target_species`` with "auto"
        resolved for ``population_size``); 0 when the threshold stays fixed."""
        return auto_target_species(self.population_size) if self.target_species == AUTO else int(self.target_species)

    # --- plain data and TOML ---
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvolutionConfig:
        """Build a config from plain data; an unknown key is refused by name."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(with_suggestion(k, known) for k in unknown)}")
        return cls(**data)

    @classmethod
    def from_neat_python(cls, path: str | Path) -> EvolutionConfig:
        """Translate a neat-python INI config file; the keys it cannot map are named in a warning
        (see ``neatify.config.neat_python`` and the key table in docs/usage.md)."""
        from neatify.config.neat_python import neat_python_values

        try:
            return cls(**neat_python_values(path))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> EvolutionConfig:
        """Load from a TOML file: top-level keys, or the keys of an ``[evolution]`` table."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        if "evolution" in data and isinstance(data["evolution"], dict):
            data = data["evolution"]
        return cls.from_dict(data)

    def to_toml(self, path: str | Path) -> None:
        import tomli_w

        Path(path).write_text(tomli_w.dumps({"evolution": self.to_dict()}))

    def replace(self, **changes: Any) -> EvolutionConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _checked_list(name: str, value: Any, floats: bool) -> list[Any]:
    """``value`` as a list of strings, or of finite floats; ConfigError naming ``name`` otherwise."""
    kind = (float, int) if floats else str
    if not isinstance(value, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{name} must be a list of {'numbers' if floats else 'strings'}, got {value!r}")
    if floats and not all(math.isfinite(v) for v in value):
        raise ConfigError(f"{name} must hold finite numbers, got {value!r}")
    return [float(v) for v in value] if floats else value


def _valid_initial_connection(mode: str) -> bool:
    """``full``, ``none``, ``fs_neat``, or ``partial P`` with P a fraction in [0, 1]."""
    name, _, fraction = mode.partition(" ")
    if name != "partial":
        return mode in ("full", "none", "fs_neat")
    try:
        return 0.0 <= float(fraction) <= 1.0
    except ValueError:
        return False


_FIELD_TYPES: dict[str, type] = {  # "int | str" (target_species) is checked on its own in validate()
    f.name: {"int": int, "float": float, "bool": bool, "str": str, "list[str]": list, "list[float]": list,
             "int | str": object}[f.type]
    for f in fields(EvolutionConfig)
}
