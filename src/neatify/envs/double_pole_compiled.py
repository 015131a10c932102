"""The double-pole physics (``neatify.envs.double_pole``) as one compiled loop over the carts.

numpy's version costs some 170 µs a step for any number of carts (dozens of calls on small arrays), which
dominates a 100,000-step balancing run. This loop does the same float64 operations in the same order,
cart by cart (so every state equals numpy's bit for bit; tests/test_double_pole.py checks it on random
states and forces), in about a microsecond a cart.
"""

from __future__ import annotations

import math

import numpy as np

from neatify.runtime.compiled import compiled

GRAVITY, CART_MASS, FORCE, TAU, FRICTION = -9.8, 1.0, 10.0, 0.01, 2e-6
MASS_1, MASS_2, HALF_1, HALF_2 = 0.1, 0.01, 0.5, 0.05
X_LIMIT, ANGLE_LIMIT = 2.4, 36 * math.pi / 180


@compiled
def derivative(s: np.ndarray, force: float, out: np.ndarray) -> None:
    """``out`` = time derivative of one cart's state ``s`` (the operations of ``double_pole.derivatives``)."""
    cos1, sin1, cos2, sin2 = math.cos(s[2]), math.sin(s[2]), math.cos(s[4]), math.sin(s[4])
    g_sin1, g_sin2 = GRAVITY * sin1, GRAVITY * sin2
    friction1 = FRICTION * s[3] / (HALF_1 * MASS_1)
    friction2 = FRICTION * s[5] / (HALF_2 * MASS_2)
    fi1 = MASS_1 * HALF_1 * s[3] ** 2 * sin1 + 0.75 * MASS_1 * cos1 * (friction1 + g_sin1)
    fi2 = MASS_2 * HALF_2 * s[5] ** 2 * sin2 + 0.75 * MASS_2 * cos2 * (friction2 + g_sin2)
    mi1, mi2 = MASS_1 * (1 - 0.75 * cos1**2), MASS_2 * (1 - 0.75 * cos2**2)
    x_acc = (force + (fi1 + fi2)) / (mi1 + mi2 + CART_MASS)
    out[0], out[1], out[2], out[4] = s[1], x_acc, s[3], s[5]
    out[3] = -0.75 * (x_acc * cos1 + g_sin1 + friction1) / HALF_1
    out[5] = -0.75 * (x_acc * cos2 + g_sin2 + friction2) / HALF_2


@compiled
def rk4_step(s: np.ndarray, force: float, k: np.ndarray, probe: np.ndarray) -> None:
    """One Runge-Kutta 4 step of length ``TAU`` in place on ``s``; ``k`` (4, 6) and ``probe`` (6) are scratch."""
    half, sixth = 0.5 * TAU, TAU / 6.0
    derivative(s, force, k[0])
    for i in range(6):
        probe[i] = s[i] + half * k[0, i]
    derivative(probe, force, k[1])
    for i in range(6):
        probe[i] = s[i] + half * k[1, i]
    derivative(probe, force, k[2])
    for i in range(6):
        probe[i] = s[i] + TAU * k[2, i]
    derivative(probe, force, k[3])
    for i in range(6):
        s[i] = s[i] + sixth * (k[0, i] + 2 * k[1, i] + 2 * k[2, i] + k[3, i])


@compiled
def advance(state: np.ndarray, alive: np.ndarray, steps: np.ndarray, output: np.ndarray) -> None:
    """Every cart still up takes two RK4 steps under force ``(output - 0.5) * 2 * FORCE``; ``alive`` and
    ``steps`` follow (as ``DoublePole.step``)."""
    k, probe = np.empty((4, 6)), np.empty(6)
    for cart in range(state.shape[0]):
        if not alive[cart]:
            continue
        s = state[cart]
        force = (output[cart] - 0.5) * 2 * FORCE
        rk4_step(s, force, k, probe)
        rk4_step(s, force, k, probe)
        up = abs(s[0]) <= X_LIMIT and abs(s[2]) <= ANGLE_LIMIT and abs(s[4]) <= ANGLE_LIMIT
        alive[cart] = up
        steps[cart] += up
