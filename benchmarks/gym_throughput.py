"""Environment steps per second on Hopper-v5 for a whole population, one core, side by side.

    python benchmarks/gym_throughput.py                  # population 1,000
    python benchmarks/gym_throughput.py --genomes 200    # smaller

One generation of random first-generation networks (episodes end when the hopper falls, so most are
short) is evaluated by each contender; the figure is total environment steps over this process's CPU
time (``time.process_time``: everything runs in one thread, so a busy machine slows the run, not the
figures):
- raw mj_step: the very steps neatify.gym's native run took (same start states, same controls, replayed),
  physics only: ``mj_step(model, data, nstep=4)`` per environment step. This is the limit.
- mujoco.rollout: the same replay, one ``mujoco.rollout.rollout`` call per population step (physics only).
- neatify.gym native: ``GymEvaluator("Hopper-v5")``, the whole evaluation (networks, actions, rewards).
- neatify.gym, gymnasium envs: the same with ``native=False``: a Python loop of ``env.step`` calls.
- gymnasium envs in a list / SyncVectorEnv: gymnasium's stepping alone (random actions), the two ways to
  hold many environments.
- neat-python 2.0: its own per-genome loop (FeedForwardNetwork.activate, one env.step at a time); then its very
  steps replayed with ``mj_step`` alone, which bounds what any evaluator on one core can gain over that loop.
- EvoTorch VecGymNE: a linear policy per solution, its vectorised gymnasium environments (if installed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium
import mujoco
import numpy as np
import torch

from neatify import EvolutionConfig, Population
from neatify.gym import GymEvaluator, episode_seeds
from neatify.gym.mujoco import HopperBank

CONFIG_INI = Path(__file__).with_name("neat_python_config.ini")


class RecordingHopper(HopperBank):
    """HopperBank that keeps every step's environment indices and actions, for the physics-only replays."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[np.ndarray, np.ndarray]] = []

    def step(self, index, actions):
        self.steps.append((index.copy(), np.asarray(actions, np.float64).copy()))
        return super().step(index, actions)


def neatify_rate(genomes: int, native: bool, seed: int) -> tuple[float, int, RecordingHopper | None]:
    population = Population(num_inputs=11, num_outputs=3, config=EvolutionConfig(population_size=genomes), seed=seed)
    evaluator = GymEvaluator("Hopper-v5", seed=seed, native=native)
    bank = RecordingHopper() if native else None
    if bank is not None:
        evaluator._bank = bank  # the native bank, recording
    evaluator.bank().reset([0] * genomes)  # environments made before the clock starts, as in a run's later generations
    start = time.process_time()
    episodes = evaluator.run(population.genomes)
    elapsed = time.process_time() - start
    return float(episodes.steps.sum()) / elapsed, int(episodes.steps.sum()), bank


def raw_rate(bank: RecordingHopper, genomes: int, seed: int) -> float:
    """Replay the recorded controls on fresh MjData, from the same start states: physics only."""
    model, skip = bank.model, bank.frame_skip
    bank.reset(episode_seeds(seed, 0, 1) * genomes)
    data = [mujoco.MjData(model) for _ in range(genomes)]
    for fresh, started in zip(data, bank._data):
        fresh.qpos[:], fresh.qvel[:] = started.qpos, started.qvel
        mujoco.mj_forward(model, fresh)
    total = sum(len(index) for index, _ in bank.steps)
    start = time.process_time()
    for index, actions in bank.steps:
        for i, action in zip(index.tolist(), actions):
            data[i].ctrl[:] = action
            mujoco.mj_step(model, data[i], nstep=skip)
    return total / (time.process_time() - start)


def rollout_rate(bank: RecordingHopper, genomes: int, seed: int) -> float:
    """The same replay with one ``mujoco.rollout`` call per population step (one thread)."""
    from mujoco import rollout

    model, skip = bank.model, bank.frame_skip
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    bank.reset(episode_seeds(seed, 0, 1) * genomes)
    states = np.empty((genomes, mujoco.mj_stateSize(model, spec)))
    for i, data in enumerate(bank._data):
        mujoco.mj_getState(model, data, states[i], spec)
    scratch = [mujoco.MjData(model)]
    total = sum(len(index) for index, _ in bank.steps)
    start = time.process_time()
    for index, actions in bank.steps:
        out, _ = rollout.rollout(model, scratch, states[index], np.repeat(actions[:, None, :], skip, axis=1))
        states[index] = out[:, -1]
    return total / (time.process_time() - start)


def stepping_rates(genomes: int, steps: int, seed: int) -> list[tuple[str, float, int]]:
    """Gymnasium's own stepping, no networks: a list of environments against ``SyncVectorEnv`` (its autoreset
    resets a finished one on its next step), the same random actions, ``steps`` population steps."""
    actions = np.random.default_rng(seed).uniform(-1.0, 1.0, (steps, genomes, 3))
    envs = [gymnasium.make("Hopper-v5") for _ in range(genomes)]
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
    start = time.process_time()
    for step in actions:
        for env, action in zip(envs, step):
            if env.step(action)[2]:
                env.reset()
    listed = genomes * steps / (time.process_time() - start)
    vector = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("Hopper-v5")] * genomes)
    vector.reset(seed=seed)
    start = time.process_time()
    for step in actions:
        vector.step(step)
    return [("gymnasium envs in a list (no networks)", listed, genomes * steps),
            ("gymnasium SyncVectorEnv (no networks)", genomes * steps / (time.process_time() - start), genomes * steps)]


def neat_python_rate(genomes: int, seed: int) -> tuple[float, int, float]:
    """neat-python's steps per second, its steps, and the physics-only rate of those very steps (replayed)."""
    import neat

    text = CONFIG_INI.read_text().replace("num_inputs              = 2", "num_inputs              = 11")
    text = text.replace("num_outputs             = 1", "num_outputs             = 3")
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as fh:
        fh.write(text)
    try:
        config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                             neat.DefaultStagnation, fh.name)
    finally:
        os.unlink(fh.name)
    config.pop_size, config.seed = genomes, seed
    population = neat.Population(config)
    env, steps, controls = gymnasium.make("Hopper-v5"), 0, []
    start = time.process_time()
    for _, genome in population.population.items():  # neat-python's documented eval_genomes loop
        net = neat.nn.FeedForwardNetwork.create(genome, config)
        observation, _ = env.reset(seed=seed)
        total, done = 0.0, False
        controls.append([])
        while not done:
            action = np.clip(2.0 * np.array(net.activate(observation)) - 1.0, -1.0, 1.0)
            controls[-1].append(action)  # a list append: next to nothing beside the step
            observation, reward, terminated, truncated, _ = env.step(action)
            total, done, steps = total + reward, terminated or truncated, steps + 1
        genome.fitness = total
    elapsed = time.process_time() - start
    env.reset(seed=seed)
    return steps / elapsed, steps, steps / physics_seconds(env.unwrapped, controls)


def physics_seconds(env: Any, episodes: list[list[np.ndarray]]) -> float:
    """CPU seconds of ``mj_step`` alone replaying each episode's controls from ``env``'s current (start) state."""
    model, start_state = env.model, (env.data.qpos.copy(), env.data.qvel.copy())
    data = [mujoco.MjData(model) for _ in episodes]
    for fresh in data:
        fresh.qpos[:], fresh.qvel[:] = start_state
        mujoco.mj_forward(model, fresh)
    start = time.process_time()
    for fresh, controls in zip(data, episodes):
        for action in controls:
            fresh.ctrl[:] = action
            mujoco.mj_step(model, fresh, nstep=env.frame_skip)
    return time.process_time() - start


def evotorch_rate(genomes: int) -> tuple[float, int] | str:
    try:
        from evotorch.neuroevolution import VecGymNE
    except ImportError:
        return "not installed (pip install evotorch)"
    problem = VecGymNE("Hopper-v5", "Linear(obs_length, act_length)", num_episodes=1, max_num_envs=genomes)
    batch = problem.generate_batch(genomes)
    batch.set_values(torch.empty(genomes, problem.solution_length).uniform_(-1.0, 1.0))  # random linear policies
    start = time.process_time()
    problem.evaluate(batch)
    elapsed = time.process_time() - start
    return problem.interaction_count / elapsed, problem.interaction_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=1000, help="population size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], choices=["neat-python", "evotorch", "gymnasium-envs"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    native, native_steps, bank = neatify_rate(args.genomes, True, args.seed)
    assert bank is not None
    rows = [("raw mj_step (physics only)", raw_rate(bank, args.genomes, args.seed), native_steps),
            ("mujoco.rollout (physics only)", rollout_rate(bank, args.genomes, args.seed), native_steps),
            ("neatify.gym native", native, native_steps)]
    if "gymnasium-envs" not in args.skip:
        rate, steps, _ = neatify_rate(args.genomes, False, args.seed)
        rows.append(("neatify.gym, gymnasium envs", rate, steps))
    if "gymnasium-envs" not in args.skip:
        rows += stepping_rates(args.genomes, 20, args.seed)
    if "neat-python" not in args.skip:
        loop, steps, physics = neat_python_rate(args.genomes, args.seed)
        rows += [("neat-python 2.0 per-genome loop", loop, steps), ("  its own steps, mj_step alone", physics, steps)]
    if "evotorch" not in args.skip:
        result = evotorch_rate(args.genomes)
        rows.append(("EvoTorch VecGymNE", *result) if isinstance(result, tuple) else ("EvoTorch VecGymNE", 0.0, result))
    print(f"Hopper-v5, population {args.genomes}, one generation, one thread, CPU time")
    print(f"{'':40} {'env steps/s':>12} {'steps':>8} {'neatify native is':>20}")
    for name, rate, steps in rows:
        ratio = f"{native / rate:.2f}x" if rate else "-"
        print(f"{name:40} {rate:12,.0f} {steps!s:>8} {ratio:>20}")
    if "neat-python" not in args.skip:
        print(f"neat-python's loop is {loop / physics:.0%} physics: no evaluator on one core is more than "
              f"{physics / loop:.2f}x faster than it")


if __name__ == "__main__":
    main()
