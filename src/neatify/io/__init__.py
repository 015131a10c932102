"""Reading and writing runs and genomes: checkpoints (plain-data JSON, ``checkpoint``), the packed genome columns
every evaluation backend sends (``columns``: process pool, Ray, TCP), and the one validation layer that
checkpoints and the wire's messages share (``schema``). neat-python config import is ``neatify.config.neat_python``."""
