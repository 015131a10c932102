"""Networks built from genomes: one genome's layout and the plain-Python ``Network`` (``network``: the
reference evaluator; ``NeatModule`` runs the same layout), and a whole population's layout in array
operations (``layout``: what ``NeatPopulationModule`` runs). ``from neatify.network import Network``."""

from neatify.network.network import Network

__all__ = ["Network"]
