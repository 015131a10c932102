"""``rollout`` on the CPU as one compiled loop: each cart stepped to its end with its genome's network,
instead of one batched torch call per time step (whose launch costs dominate at small networks).

The physics are ``CartPole.advance``'s operations in the same order and dtype, the network is
``NeatPopulationModule``'s (``neatify.nn.flat``), the action is "first output above 0.5". Only the
rounding of ``sin``, ``cos``, ``exp`` and of the summation order may differ from torch's: in float64
the episodes end as the torch loop's but for about 1 in 25,000 (tests/test_cartpole_compiled.py); in
float32 a 1-ulp difference can grow over hundreds of steps until a decision near 0.5 goes the other
way (about 10 % of an evolving population's episodes end at another step). Each cart's result
depends only on its genome and its start.
"""

from __future__ import annotations

import math

import numpy as np

from neatify.envs.cartpole import (FORCE, GRAVITY, POLE_HALF_LENGTH, POLE_MASS, POLE_MOMENT, TAU, THETA_LIMIT,
                                   TOTAL_MASS, X_LIMIT, CartPole)
from neatify.nn.flat import FlatNetworks
from neatify.runtime.compiled import compiled_unchecked_division

_CONSTANTS = (0.0, 1.0, 0.5, FORCE, GRAVITY, POLE_HALF_LENGTH, POLE_MASS, POLE_MOMENT, TAU, THETA_LIMIT,
              TOTAL_MASS, X_LIMIT, 4.0 / 3.0, 60.0, 4.9, 3.4, 5.0)
"""Every number the loop uses, passed in the state's dtype so that float32 stays float32 in compiled code."""


def rollout_compiled(networks: FlatNetworks, env: CartPole) -> None:
    """Run every episode of ``env`` (already reset) to its end, genome ``g`` driving carts
    ``g * episodes .. (g + 1) * episodes - 1``; ``env.state``, ``steps`` and ``done`` are updated in place."""
    state = env.state.numpy()
    episodes = len(state) // (len(networks.genome_start) - 1)
    dtype = state.dtype
    weight, bias = networks.weight.astype(dtype, copy=False), networks.bias.astype(dtype, copy=False)
    _rollout(networks.genome_start, networks.rows, networks.crow, networks.column, weight, bias,
             networks.activation, networks.outputs[:, 0].copy(), networks.num_nodes, episodes, state,
             env.steps.numpy(), env.done.numpy(), env.max_steps, np.array(_CONSTANTS, dtype=dtype))


@compiled_unchecked_division
def _activate(code: int, x: float, c: tuple) -> float:
    """Activation ``ACTIVATION_CODES[code]`` of ``x``, as ``neatify.nn.activations`` computes it."""
    if code == 1 or code == 2:  # the logistic function of scale * x, its exponent held to [-60, 60]
        z = x * -(c[1] if code == 1 else c[14])
        z = min(max(z, -c[13]), c[13])
        return c[1] / (c[1] + math.exp(z))
    if code == 0:
        return x
    if code == 3:
        return math.tanh(x)
    if code == 4:
        return max(x, c[0])
    if code == 5:
        return min(max(x, -c[1]), c[1])
    if code == 6:
        return abs(x)
    if code == 7:
        return x * x
    if code == 8:
        return c[1] if x > c[0] else c[0]
    if code == 9:
        y = min(max(x, -c[15]), c[15])
        return math.exp(-c[16] * (y * y))
    if code == 10:
        return math.sin(x)
    return math.cos(x)


@compiled_unchecked_division
def _rollout(genome_start: np.ndarray, rows: np.ndarray, crow: np.ndarray, column: np.ndarray, weight: np.ndarray,
             bias: np.ndarray, activation: np.ndarray, output: np.ndarray, num_nodes: int, episodes: int,
             state: np.ndarray, steps: np.ndarray, done: np.ndarray, max_steps: int, c: np.ndarray) -> None:
    """Every cart to its end (see ``rollout_compiled``); ``c`` holds ``_CONSTANTS``. A genome's carts take
    their steps side by side, so the processor overlaps their chains of dependent operations."""
    values = np.zeros((episodes, num_nodes + 4), dtype=state.dtype)
    c = (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15],
         c[16])  # held in registers: stores into `values` could alias the array
    for g in range(len(genome_start) - 1):
        carts = state[g * episodes:(g + 1) * episodes]
        count, finished = steps[g * episodes:(g + 1) * episodes], done[g * episodes:(g + 1) * episodes]
        running = episodes - finished.sum()
        while running:
            for e in range(episodes):
                if finished[e]:
                    continue
                for j in range(4):
                    values[e, num_nodes + j] = carts[e, j]
                for i in range(genome_start[g], genome_start[g + 1]):
                    r = rows[i]
                    total = c[0]
                    for k in range(crow[r], crow[r + 1]):
                        total += weight[k] * values[e, column[k]]
                    values[e, r] = _activate(activation[r], bias[r] + total, c)
                x, x_dot, theta, theta_dot = _advance(carts[e, 0], carts[e, 1], carts[e, 2], carts[e, 3],
                                                      values[e, output[g]] > c[2], c)
                carts[e, 0], carts[e, 1], carts[e, 2], carts[e, 3] = x, x_dot, theta, theta_dot
                count[e] += 1
                if abs(x) > c[11] or abs(theta) > c[9] or count[e] >= max_steps:
                    finished[e] = True
                    running -= 1


@compiled_unchecked_division
def _advance(x: float, x_dot: float, theta: float, theta_dot: float, right: bool,
             c: tuple) -> tuple[float, float, float, float]:
    """One Euler step of one cart (``CartPole.advance``'s operations, in its order): its new state."""
    force = c[3] if right else -c[3]
    cos, sin = math.cos(theta), math.sin(theta)
    temp = (theta_dot * theta_dot * c[7] * sin + force) / c[10]
    numerator = sin * c[4] - cos * temp
    other = -(cos * cos * c[6] / c[10]) + c[12]
    theta_acc = numerator / (other * c[5])
    x_acc = temp - theta_acc * c[7] * cos / c[10]
    return x + x_dot * c[8], x_dot + x_acc * c[8], theta + theta_dot * c[8], theta_dot + theta_acc * c[8]
