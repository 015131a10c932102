"""Batched control tasks in torch, stepped for a whole population at once (see ``NeatPopulationModule``)."""

from neatify.envs.cartpole import CartPole
from neatify.envs.double_pole import DoublePole
from neatify.envs.rollout import first_output_above_half, rollout

__all__ = ["CartPole", "DoublePole", "first_output_above_half", "rollout"]
