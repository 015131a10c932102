"""Indirect encodings: CPPNs queried over substrates (HyperNEAT, ES-HyperNEAT), batched over the population."""

from neatify.hyperneat.cppn import CPPN_ACTIVATIONS, cppn_config
from neatify.hyperneat.decode import CapCount, HyperNEAT, SubstrateFitness
from neatify.hyperneat.es_batched import ESHyperNEAT, ESPhenotypes
from neatify.hyperneat.es_params import ESParams
from neatify.hyperneat.substrate import Substrate, grid_coordinates

__all__ = ["CPPN_ACTIVATIONS", "CapCount", "ESHyperNEAT", "ESParams", "ESPhenotypes", "HyperNEAT", "Substrate",
           "SubstrateFitness", "cppn_config", "grid_coordinates"]
