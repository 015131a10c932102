"""``rollout``: a whole population's cart-pole episodes, one module call per step, finished genomes dropped."""

from __future__ import annotations

from collections.abc import Callable

import torch

from neatify.envs.cartpole import CartPole
from neatify.envs.cartpole_compiled import rollout_compiled
from neatify.nn.flat import FlatNetworks
from neatify.nn.population_module import NeatPopulationModule


def first_output_above_half(outputs: torch.Tensor) -> torch.Tensor:
    """Push right where a network's first output exceeds 0.5: ``(genomes, episodes, outputs)`` -> bools."""
    return outputs[..., 0] > 0.5


def rollout(module: NeatPopulationModule, env: CartPole,
            policy: Callable[[torch.Tensor], torch.Tensor] = first_output_above_half,
            check_every: int = 4, shrink: float = 0.5, compiled: bool = True) -> torch.Tensor:
    """Reset ``env`` and ``module`` and run every episode to its end; returns ``env.steps`` as
    ``(genomes, episodes)``.

    Genome ``i`` drives environments ``i * episodes`` to ``(i + 1) * episodes - 1`` (``episodes =
    env.num_envs // module.num_genomes``); ``policy`` maps the module's outputs ``(genomes, episodes,
    outputs)`` to actions. Every ``check_every`` steps, once at most ``shrink`` of the genomes being
    run have an episode left, the others are dropped from the module (``select``) and the carts
    (``take``), so the long tail of a few good genomes costs only theirs. The carts end as stepping
    all of them to the end would leave them (finished ones are frozen either way).

    On the CPU, with the default policy and a feed-forward module (``compiled``), one compiled loop steps
    each cart to its end instead (``neatify.envs.cartpole_compiled``: the same physics and networks, up to
    rounding); ``compiled=False`` keeps the torch loop.
    """
    genomes = module.num_genomes
    if check_every < 1:
        raise ValueError(f"rollout's check_every must be at least 1, got {check_every}")
    if env.num_envs % genomes:
        raise ValueError(f"rollout needs whole episodes per genome: {env.num_envs} environments "
                         f"for {genomes} genomes")
    episodes = env.num_envs // genomes
    module.reset()
    env.reset()
    flat = _flat(module, env) if compiled and policy is first_output_above_half else None
    if flat is not None:
        rollout_compiled(flat, env)
        return env.steps.view(genomes, episodes)
    device = env.state.device
    running = torch.arange(genomes, device=device)  # the genomes in `part`, by their index in `module`
    part, net, step = env, module, 0
    while True:
        actions = policy(net(part.state.view(len(running), episodes, -1)))
        part.advance(actions)
        step += 1
        if step % check_every:
            continue
        left = (~part.done.view(len(running), episodes)).any(dim=1).nonzero().squeeze(1)
        if len(left) > shrink * len(running):
            continue
        if part is not env:
            env.put(_carts(running, episodes), part)
        if len(left) == 0:
            return env.steps.view(genomes, episodes)
        running, net, part = running[left], net.select(left), part.take(_carts(left, episodes))


def _flat(module: NeatPopulationModule, env: CartPole) -> FlatNetworks | None:
    """The module's networks for the compiled loop, or None where it cannot run them (see ``FlatNetworks.of``;
    an environment other than ``CartPole`` itself, whose physics the loop has; carts off the CPU, in a dtype
    other than float32 and float64 or other than the module's; a module that does not take the cart's four
    numbers, which the torch loop refuses by name)."""
    state = env.state
    if (type(env) is not CartPole or state.device.type != "cpu" or not state.is_contiguous()
            or state.dtype not in (torch.float32, torch.float64) or state.dtype != module._bias.dtype
            or module.num_inputs != state.shape[1]):
        return None
    return FlatNetworks.of(module)


def _carts(genomes: torch.Tensor, episodes: int) -> torch.Tensor:
    """The environment indices of ``genomes``' episodes, genome-major."""
    return (genomes.unsqueeze(1) * episodes + torch.arange(episodes, device=genomes.device)).reshape(-1)
