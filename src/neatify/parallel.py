"""Public import path of the process-pool evaluator (``from neatify.parallel import ParallelEvaluator``);
the code lives in ``neatify.backends.processes``."""

from neatify.backends.processes import ParallelEvaluator

__all__ = ["ParallelEvaluator"]
