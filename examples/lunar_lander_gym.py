"""Evolve a LunarLander-v3 controller with gymnasium and Box2D.

From a checkout: ``pip install '.[gym]' "gymnasium[box2d]"``, then

    python examples/lunar_lander_gym.py --generations 200 --workers 2 --out lander-run

Same command line and outputs as cartpole_gym.py. Exits with a clear message when Box2D is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cartpole_gym import GymEvaluator, evolve  # noqa: E402

lander_fitness = GymEvaluator("LunarLander-v3", episodes=5, max_steps=1000, resample=True)
"""``neatify worker lunar_lander_gym:lander_fitness`` evaluates LunarLander for a master. New episodes every
generation (on every backend), so the champion learns landing, not three particular landings; to pick and test it
on held-out episodes, see benchmarks/gym_solve.py."""


def require_box2d() -> None:
    """Exit with an install hint unless Box2D (LunarLander's physics engine) is importable."""
    try:
        import Box2D  # noqa: F401
    except ImportError:
        raise SystemExit("LunarLander needs Box2D: pip install 'gymnasium[box2d]'") from None


if __name__ == "__main__":
    require_box2d()
    evolve(lander_fitness, "Evolve a LunarLander-v3 controller.", threshold=200.0)
