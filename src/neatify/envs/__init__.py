"""Batched control tasks in torch, stepped for a whole population at once (see ``NeatPopulationModule``)."""

from neatify.envs.cartpole import CartPole
from neatify.envs.double_pole import DoublePole

__all__ = ["CartPole", "DoublePole"]
