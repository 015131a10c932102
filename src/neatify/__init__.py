"""NEATify: NeuroEvolution of Augmenting Topologies, with networks as PyTorch modules.

The NEAT algorithm (``Population``, ``Genome``, ``EvolutionConfig``) needs no torch; the torch
pieces (``NeatModule``) load on first use, so ``import neatify`` stays light for workers.
"""

from __future__ import annotations

from typing import Any

from neatify.activations import register_activation
from neatify.io.checkpoint import Checkpoint
from neatify.config import ConfigError, EvolutionConfig
from neatify.genome.genes import ConnectionGene, NodeGene
from neatify.genome.genome import Genome
from neatify.network.network import Network
from neatify.evaluation import EvaluationError, FitnessError
from neatify.population import GenerationStats, Population
from neatify.reporting.reporters import CheckpointReporter, ProgressReporter, Reporter, StatisticsReporter
from neatify.speciation.species import Species

__version__ = "0.2.0"

__all__ = [
    "Checkpoint", "CheckpointReporter", "ConfigError", "ConnectionGene", "EvaluationError", "EvolutionConfig",
    "FitnessError", "GenerationStats", "Genome", "NeatModule", "NeatPopulationModule", "Network", "NodeGene",
    "ParallelEvaluator", "Population", "ProgressReporter", "Reporter", "Species", "StatisticsReporter",
    "__version__", "register_activation",
]

_LAZY = {"NeatModule": "neatify.nn", "NeatPopulationModule": "neatify.nn", "ParallelEvaluator": "neatify.backends.processes"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neatify' has no attribute {name!r}")
