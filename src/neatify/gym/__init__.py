"""Gymnasium environments evaluated for the whole population at once (the ``gym`` extra).

``GymEvaluator("CartPole-v1")`` is a fitness function: each batch of genomes it is given becomes one
``NeatPopulationModule`` stepping every genome's episodes together. docs/gym.md is the guide.
"""

from neatify.gym.champion import HeldOutChampion
from neatify.gym.evaluator import GenomeEpisodes, GymEvaluationError, GymEvaluator, episode_seeds
from neatify.gym.normalize import ObservationNormalizer
from neatify.gym.spaces import ActionAdapter, UnsupportedSpaceError

__all__ = ["ActionAdapter", "GenomeEpisodes", "GymEvaluationError", "GymEvaluator", "HeldOutChampion", "ObservationNormalizer",
           "UnsupportedSpaceError", "episode_seeds"]
