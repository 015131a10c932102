"""Double-pole balancing (Wieland's cart with two poles), batched over carts in torch.

The set-up of the NEAT paper's experiments and source: Runge-Kutta 4 with tau = 0.01 s, two RK4
steps per network decision, force = (output - 0.5) * 2 * 10 N, gravity 9.8, cart 1 kg, long pole
half-length 0.5 m and mass 0.1 kg, short pole half-length 0.05 m and mass 0.01 kg, pole-pivot
friction 2e-6. A cart fails when |x| > 2.4 m or either pole leaves +-36 degrees. The long pole
starts at 0.07 rad (about 4 degrees, as in the paper's source), everything else at rest.
"""

from __future__ import annotations

import itertools
import math

import torch

GRAVITY, CART_MASS, FORCE, TAU, FRICTION = -9.8, 1.0, 10.0, 0.01, 2e-6
POLE_MASS = (0.1, 0.01)
POLE_HALF_LENGTH = (0.5, 0.05)
X_LIMIT, ANGLE_LIMIT = 2.4, 36 * math.pi / 180
START_ANGLE = 0.07
GENERALISATION_FRACTIONS = (0.05, 0.25, 0.5, 0.75, 0.95)
GENERALISATION_RANGES = (2.16, 1.35, 3.6 * math.pi / 180, 8.6 * math.pi / 180)
"""Half-ranges of x, x', theta1, theta1' for the 625 starts of the generalisation test."""


def derivatives(state: torch.Tensor, force: torch.Tensor) -> torch.Tensor:
    """Time derivative of ``(n, 6)`` states ``[x, x', theta1, theta1', theta2, theta2']`` (Wieland)."""
    x_dot, theta_dots = state[:, 1], (state[:, 3], state[:, 5])
    fi_sum, mi_sum, parts = 0.0, 0.0, []
    for k, theta_dot in enumerate(theta_dots):
        mass, half = POLE_MASS[k], POLE_HALF_LENGTH[k]
        theta = state[:, 2 + 2 * k]
        cos, g_sin = torch.cos(theta), GRAVITY * torch.sin(theta)
        friction = FRICTION * theta_dot / (half * mass)
        fi_sum = fi_sum + mass * half * theta_dot**2 * torch.sin(theta) + 0.75 * mass * cos * (friction + g_sin)
        mi_sum = mi_sum + mass * (1 - 0.75 * cos**2)
        parts.append((cos, g_sin, friction, half))
    x_acc = (force + fi_sum) / (mi_sum + CART_MASS)
    theta_accs = [-0.75 * (x_acc * cos + g_sin + friction) / half for cos, g_sin, friction, half in parts]
    return torch.stack([x_dot, x_acc, theta_dots[0], theta_accs[0], theta_dots[1], theta_accs[1]], dim=1)


def rk4(state: torch.Tensor, force: torch.Tensor, h: float = TAU) -> torch.Tensor:
    """One classic Runge-Kutta 4 step of length ``h``."""
    k1 = derivatives(state, force)
    k2 = derivatives(state + 0.5 * h * k1, force)
    k3 = derivatives(state + 0.5 * h * k2, force)
    k4 = derivatives(state + h * k3, force)
    return state + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


class DoublePole:
    """``n`` double-pole carts stepped together; ``steps`` counts each cart's steps balanced so far."""

    def __init__(self, state: torch.Tensor) -> None:
        self.state = state
        self.alive = torch.ones(state.shape[0], dtype=torch.bool, device=state.device)
        self.steps = torch.zeros(state.shape[0], dtype=torch.long, device=state.device)

    @classmethod
    def standard(cls, n: int, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64) -> DoublePole:
        """``n`` carts in the standard start: long pole at 0.07 rad, all else zero."""
        state = torch.zeros(n, 6, device=device, dtype=dtype)
        state[:, 2] = START_ANGLE
        return cls(state)

    @classmethod
    def generalisation(cls, device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float64) -> DoublePole:
        """The 625 starts of the generalisation test (x, x', theta1, theta1' on a 5^4 grid)."""
        grid = torch.tensor(list(itertools.product(GENERALISATION_FRACTIONS, repeat=4)), dtype=dtype)
        state = torch.zeros(len(grid), 6, dtype=dtype)
        state[:, :4] = (grid * 2 - 1) * torch.tensor(GENERALISATION_RANGES, dtype=dtype)
        return cls(state.to(device))

    def observe(self, velocities: bool) -> torch.Tensor:
        """Network inputs, scaled as in the paper's source, with a constant 0.5 bias input last."""
        s = self.state
        if velocities:
            scaled = [s[:, 0] / 4.8, s[:, 1] / 2, s[:, 2] / 0.52, s[:, 3] / 2, s[:, 4] / 0.52, s[:, 5] / 2]
        else:
            scaled = [s[:, 0] / 4.8, s[:, 2] / 0.52, s[:, 4] / 0.52]
        return torch.stack([*scaled, torch.full_like(s[:, 0], 0.5)], dim=1)

    def step(self, output: torch.Tensor) -> torch.Tensor:
        """Apply ``output`` in [0, 1] (one per cart) for two RK4 steps; returns which carts are still up."""
        force = (output.reshape(-1).to(self.state.dtype) - 0.5) * 2 * FORCE
        state = rk4(rk4(self.state, force), force)
        self.state = torch.where(self.alive.unsqueeze(1), state, self.state)
        up = (self.state[:, 0].abs() <= X_LIMIT) & (self.state[:, 2].abs() <= ANGLE_LIMIT) \
            & (self.state[:, 4].abs() <= ANGLE_LIMIT)
        self.alive &= up
        self.steps += self.alive.long()
        return self.alive
