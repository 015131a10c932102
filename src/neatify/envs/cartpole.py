"""The classic cart-pole (gymnasium's ``CartPole-v1`` physics), batched over environments in torch."""

from __future__ import annotations

import math

import torch

GRAVITY, CART_MASS, POLE_MASS, POLE_HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
X_LIMIT, THETA_LIMIT = 2.4, 12 * 2 * math.pi / 360


class CartPole:
    """``num_envs`` cart-poles stepped together: ``reset()`` then ``step(actions)`` until ``done.all()``.

    State per environment: cart position, cart velocity, pole angle, pole angular velocity (Euler
    steps of 0.02 s, as gymnasium). An environment that fails or reaches ``max_steps`` is done and
    stays done (its state frozen); ``steps`` counts the steps each one survived, its return.
    """

    def __init__(self, num_envs: int, max_steps: int = 500, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32, seed: int | None = None) -> None:
        self.num_envs, self.max_steps = num_envs, max_steps
        self.generator = torch.Generator()  # on the CPU, so a seed gives the same starts on every device
        if seed is not None:
            self.generator.manual_seed(seed)
        self.state = torch.zeros(num_envs, 4, device=device, dtype=dtype)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.done = torch.zeros(num_envs, dtype=torch.bool, device=device)

    def reset(self) -> torch.Tensor:
        """Start every environment from a uniform random state in [-0.05, 0.05]^4; returns it."""
        start = torch.empty(self.state.shape, dtype=self.state.dtype).uniform_(-0.05, 0.05, generator=self.generator)
        self.state.copy_(start)
        self.steps.zero_()
        self.done.zero_()
        return self.state.clone()

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Push right where ``action`` is true/1, left otherwise; returns (observations, done)."""
        x, x_dot, theta, theta_dot = self.state.unbind(1)
        force = torch.where(action.reshape(-1).bool(), FORCE, -FORCE).to(self.state.dtype)
        cos, sin = torch.cos(theta), torch.sin(theta)
        total_mass, pole_moment = CART_MASS + POLE_MASS, POLE_MASS * POLE_HALF_LENGTH
        temp = (force + pole_moment * theta_dot**2 * sin) / total_mass
        theta_acc = (GRAVITY * sin - cos * temp) / (
            POLE_HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos**2 / total_mass))
        x_acc = temp - pole_moment * theta_acc * cos / total_mass
        new = torch.stack([x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot,
                           theta_dot + TAU * theta_acc], dim=1)
        running = ~self.done
        self.state = torch.where(running.unsqueeze(1), new, self.state)
        self.steps += running.long()
        failed = (new[:, 0].abs() > X_LIMIT) | (new[:, 2].abs() > THETA_LIMIT)
        self.done |= running & (failed | (self.steps >= self.max_steps))
        return self.state.clone(), self.done.clone()
