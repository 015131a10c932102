"""Networks built from genomes: the graph helpers, the plain-Python ``Network`` (the reference
evaluator) and the array layouts that the torch modules run. ``from neatify.network import Network``."""

from neatify.network.network import Network

__all__ = ["Network"]
