"""The evolution settings: ``EvolutionConfig`` (a validated dataclass, TOML in and out), ``ConfigError``,
and the translation of neat-python's INI files into it."""

from neatify.config.errors import ConfigError
from neatify.config.evolution import AUTO, EvolutionConfig, auto_target_species, tomllib

__all__ = ["AUTO", "ConfigError", "EvolutionConfig", "auto_target_species", "tomllib"]
