"""Double-pole balancing (Wieland's cart with two poles), batched over carts in numpy.

The set-up of the NEAT paper's experiments and source: Runge-Kutta 4 with tau = 0.01 s, two RK4
steps per network decision, force = (output - 0.5) * 2 * 10 N, gravity 9.8, cart 1 kg, long pole
half-length 0.5 m and mass 0.1 kg, short pole half-length 0.05 m and mass 0.01 kg, pole-pivot
friction 2e-6. A cart fails when |x| > 2.4 m or either pole leaves +-36 degrees. The long pole
starts at 0.07 rad (about 4 degrees, as in the paper's source), everything else at rest.

The physics is float64: ``derivatives`` and ``rk4`` in numpy are the readable reference, and
``step`` runs the same operations as one compiled loop over the carts (``double_pole_compiled``), bit
for bit equal and far cheaper per step. Observations come out as torch tensors (sharing memory) for
``NeatPopulationModule``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from neatify.envs.double_pole_compiled import (ANGLE_LIMIT, CART_MASS, FORCE, FRICTION, GRAVITY, HALF_1, HALF_2,
                                               MASS_1, MASS_2, TAU, X_LIMIT, advance)

POLE_MASS = np.array([MASS_1, MASS_2])
POLE_HALF_LENGTH = np.array([HALF_1, HALF_2])
START_ANGLE = 0.07
GENERALISATION_FRACTIONS = (0.05, 0.25, 0.5, 0.75, 0.95)
GENERALISATION_RANGES = (2.16, 1.35, 3.6 * math.pi / 180, 8.6 * math.pi / 180)
"""Half-ranges of x, x', theta1, theta1' for the 625 starts of the generalisation test."""


def derivatives(state: np.ndarray, force: np.ndarray) -> np.ndarray:
    """Time derivative of ``(n, 6)`` states ``[x, x', theta1, theta1', theta2, theta2']`` (Wieland)."""
    theta, theta_dot = state[:, 2::2], state[:, 3::2]
    cos, sin = np.cos(theta), np.sin(theta)
    g_sin = GRAVITY * sin
    friction = FRICTION * theta_dot / (POLE_HALF_LENGTH * POLE_MASS)
    fi = POLE_MASS * POLE_HALF_LENGTH * theta_dot**2 * sin + 0.75 * POLE_MASS * cos * (friction + g_sin)
    mi = POLE_MASS * (1 - 0.75 * cos**2)
    x_acc = (force + (fi[:, 0] + fi[:, 1])) / (mi[:, 0] + mi[:, 1] + CART_MASS)
    out = np.empty_like(state)
    out[:, 0], out[:, 1], out[:, 2::2] = state[:, 1], x_acc, theta_dot
    out[:, 3::2] = -0.75 * (x_acc[:, None] * cos + g_sin + friction) / POLE_HALF_LENGTH
    return out


def rk4(state: np.ndarray, force: np.ndarray, h: float = TAU) -> np.ndarray:
    """One classic Runge-Kutta 4 step of length ``h``."""
    k1 = derivatives(state, force)
    k2 = derivatives(state + 0.5 * h * k1, force)
    k3 = derivatives(state + 0.5 * h * k2, force)
    k4 = derivatives(state + h * k3, force)
    return state + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


class DoublePole:
    """``n`` double-pole carts stepped together; ``steps`` counts each cart's steps balanced so far."""

    def __init__(self, state: np.ndarray) -> None:
        self.state = np.array(state, dtype=np.float64)
        self.alive = np.ones(len(self.state), dtype=bool)
        self.steps = np.zeros(len(self.state), dtype=np.int64)

    @classmethod
    def standard(cls, n: int) -> DoublePole:
        """``n`` carts in the standard start: long pole at 0.07 rad, all else zero."""
        state = np.zeros((n, 6))
        state[:, 2] = START_ANGLE
        return cls(state)

    @classmethod
    def generalisation(cls) -> DoublePole:
        """The 625 starts of the generalisation test (x, x', theta1, theta1' on a 5^4 grid)."""
        grid = np.array(list(itertools.product(GENERALISATION_FRACTIONS, repeat=4)))
        state = np.zeros((len(grid), 6))
        state[:, :4] = (grid * 2 - 1) * np.array(GENERALISATION_RANGES)
        return cls(state)

    def observe(self, velocities: bool) -> torch.Tensor:
        """Network inputs ``(n, 7)`` or ``(n, 4)``, scaled as in the paper's source, last a 0.5 bias."""
        s = self.state
        if velocities:
            scaled = s / np.array([4.8, 2, 0.52, 2, 0.52, 2])
        else:
            scaled = s[:, 0::2] / np.array([4.8, 0.52, 0.52])
        return torch.from_numpy(np.concatenate([scaled, np.full((len(s), 1), 0.5)], axis=1))

    def step(self, output: torch.Tensor | np.ndarray) -> np.ndarray:
        """Apply ``output`` in [0, 1] (one per cart) for two RK4 steps; returns which carts are still up.

        Only the carts still up are simulated (fallen ones keep their last state). The compiled loop
        (``double_pole_compiled.advance``) does ``step_numpy``'s operations, bit for bit, cart by cart.
        """
        output = output.detach().cpu().numpy() if isinstance(output, torch.Tensor) else np.asarray(output)
        if output.size != len(self.state):
            raise ValueError(f"DoublePole.step needs one output per cart: {len(self.state)} carts, "
                             f"{output.size} outputs")
        advance(self.state, self.alive, self.steps, np.ascontiguousarray(output.reshape(-1), dtype=np.float64))
        return self.alive

    def step_numpy(self, output: np.ndarray) -> np.ndarray:
        """``step`` in numpy on the carts still up: the readable reference the compiled loop is tested against."""
        up = np.flatnonzero(self.alive)
        force = (np.asarray(output).reshape(-1)[up].astype(np.float64) - 0.5) * 2 * FORCE
        state = rk4(rk4(self.state[up], force), force)
        self.state[up] = state
        still = (np.abs(state[:, 0]) <= X_LIMIT) & (np.abs(state[:, 2::2]) <= ANGLE_LIMIT).all(axis=1)
        self.alive[up] = still
        self.steps[up] += still
        return self.alive
