"""Public import path of the Ray evaluator (``from neatify.ray import RayEvaluator``); the code lives in
``neatify.backends.ray``."""

from neatify.backends.ray import RayEvaluator

__all__ = ["RayEvaluator"]
