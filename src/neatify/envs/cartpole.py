"""The classic cart-pole (gymnasium's ``CartPole-v1`` physics), batched over environments in torch."""

from __future__ import annotations

import math

import torch

GRAVITY, CART_MASS, POLE_MASS, POLE_HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
X_LIMIT, THETA_LIMIT = 2.4, 12 * 2 * math.pi / 360
TOTAL_MASS, POLE_MOMENT = CART_MASS + POLE_MASS, POLE_MASS * POLE_HALF_LENGTH


class CartPole:
    """``num_envs`` cart-poles stepped together: ``reset()`` then ``step(actions)`` until ``done.all()``.

    State per environment: cart position, cart velocity, pole angle, pole angular velocity (Euler
    steps of 0.02 s, as gymnasium). An environment that fails or reaches ``max_steps`` is done and
    stays done (its state frozen); ``steps`` counts the steps each one survived, its return.
    ``neatify.envs.rollout`` runs a whole population's episodes on one.
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
        self._scratch: _Scratch | None = None

    def reset(self) -> torch.Tensor:
        """Start every environment from a uniform random state in [-0.05, 0.05]^4; returns it."""
        start = torch.empty(self.state.shape, dtype=self.state.dtype).uniform_(-0.05, 0.05, generator=self.generator)
        self.state.copy_(start)
        self.steps.zero_()
        self.done.zero_()
        return self.state.clone()

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Push right where ``action`` is true/1, left otherwise; returns copies of (observations, done)."""
        self.advance(action)
        return self.state.clone(), self.done.clone()

    def advance(self, action: torch.Tensor) -> None:
        """``step`` without the copies: ``state``, ``steps`` and ``done`` are updated in place, the
        physics written into buffers kept between steps (the same operations, so the same numbers)."""
        action = action.reshape(-1)
        if self._scratch is None:
            self._scratch = _Scratch(self.state)
        b = self._scratch
        theta, theta_dot = self.state[:, 2], self.state[:, 3]
        x_acc, theta_acc = b.derivative[:, 1], b.derivative[:, 3]
        torch.logical_not(self.done, out=b.running)
        torch.where(action if action.dtype == torch.bool else action.bool(), b.right, b.left, out=b.force)
        torch.cos(theta, out=b.cos)
        torch.sin(theta, out=b.sin)
        # temp = (force + pole_moment * theta_dot**2 * sin) / total_mass
        temp = torch.pow(theta_dot, 2, out=b.temp).mul_(POLE_MOMENT).mul_(b.sin).add_(b.force).div_(TOTAL_MASS)
        # theta_acc = (gravity * sin - cos * temp) / (half_length * (4/3 - pole_mass * cos**2 / total_mass))
        torch.mul(b.sin, GRAVITY, out=b.numerator).sub_(torch.mul(b.cos, temp, out=b.other))
        torch.pow(b.cos, 2, out=b.other).mul_(POLE_MASS).div_(TOTAL_MASS).neg_().add_(4.0 / 3.0).mul_(POLE_HALF_LENGTH)
        torch.div(b.numerator, b.other, out=theta_acc)
        # x_acc = temp - pole_moment * theta_acc * cos / total_mass
        torch.mul(theta_acc, POLE_MOMENT, out=b.other).mul_(b.cos).div_(TOTAL_MASS)
        torch.sub(temp, b.other, out=x_acc)
        b.derivative[:, 0::2] = self.state[:, 1::2]  # x' = x_dot, theta' = theta_dot
        new = torch.add(self.state, b.derivative.mul_(TAU), out=b.new)
        torch.where(b.running.unsqueeze(1), new, self.state, out=self.state)
        self.steps += b.running
        failed = torch.gt(torch.abs(new[:, 0::2], out=b.magnitude), b.limits, out=b.beyond).any(dim=1)
        self.done |= failed.logical_or_(self.steps >= self.max_steps)

    def take(self, index: torch.Tensor) -> CartPole:
        """The environments at ``index`` as a new ``CartPole`` (copies), for stepping a subset."""
        part = CartPole(len(index), self.max_steps, device=self.state.device, dtype=self.state.dtype)
        part.state, part.steps, part.done = self.state[index], self.steps[index], self.done[index]
        return part

    def put(self, index: torch.Tensor, part: CartPole) -> None:
        """Write back the environments ``take(index)`` returned, as ``part`` left them."""
        self.state[index], self.steps[index], self.done[index] = part.state, part.steps, part.done


class _Scratch:
    """Buffers for ``CartPole.advance``, the shape and dtype of the state they serve."""

    def __init__(self, state: torch.Tensor) -> None:
        n, like = len(state), state[:, 0]
        self.cos, self.sin, self.force, self.temp, self.numerator, self.other = (
            torch.empty_like(like) for _ in range(6))
        self.derivative, self.new = torch.empty_like(state), torch.empty_like(state)
        self.magnitude = torch.empty(n, 2, dtype=state.dtype, device=state.device)
        self.beyond = torch.empty(n, 2, dtype=torch.bool, device=state.device)
        self.running = torch.empty(n, dtype=torch.bool, device=state.device)
        self.right, self.left, self.limits = (torch.tensor(v, dtype=state.dtype, device=state.device)
                                              for v in (FORCE, -FORCE, [X_LIMIT, THETA_LIMIT]))
