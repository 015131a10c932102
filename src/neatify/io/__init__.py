"""Reading and writing runs: checkpoints (plain-data JSON, ``checkpoint``) and the plain-data checks they
share with the wire's messages (``schema``). neat-python config import is ``neatify.config.neat_python``."""
