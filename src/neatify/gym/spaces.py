"""What a network can drive: flat observations in, Discrete, Box or MultiBinary actions out.

A network's outputs become actions here: Discrete takes the argmax, Box scales the outputs from the
activation's range onto the space's bounds and clips them there, MultiBinary thresholds at the range's
middle. Anything else (Dict, Tuple, image observations) is refused with an error naming the space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class UnsupportedSpaceError(ValueError):
    """An environment's observation or action space that a NEAT network cannot drive (named in the message)."""


def observation_size(space: Any, env_name: str) -> int:
    """The number of network inputs for a flat Box or Discrete (one-hot) observation space."""
    kind = type(space).__name__
    if kind == "Box":
        if len(space.shape) != 1:
            raise UnsupportedSpaceError(
                f"{env_name}: observation space {space} has shape {space.shape}; only flat (1-D) Box observations "
                f"can be network inputs (an image needs a substrate or a flattening wrapper)")
        return int(space.shape[0])
    if kind == "Discrete":
        return int(space.n)
    raise UnsupportedSpaceError(f"{env_name}: observation space {space} ({kind}) is not supported; "
                                f"expected a 1-D Box or Discrete (wrap Dict/Tuple spaces with FlattenObservation)")


def observation_encoder(space: Any) -> Callable[[Any], np.ndarray]:
    """A function from one observation to a flat float64 vector (Discrete: one-hot)."""
    if type(space).__name__ == "Discrete":
        n, start = int(space.n), int(space.start)
        return lambda obs: np.eye(n)[int(obs) - start]
    return lambda obs: np.asarray(obs, dtype=np.float64).reshape(-1)


@dataclass(frozen=True)
class ActionAdapter:
    """Turns a batch of network outputs ``(envs, num_outputs)`` into one action per environment."""

    kind: str
    num_outputs: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    start: int = 0
    output_range: tuple[float, float] = (0.0, 1.0)

    @classmethod
    def for_space(cls, space: Any, env_name: str, output_range: tuple[float, float] = (0.0, 1.0)) -> ActionAdapter:
        """The adapter of a Discrete, Box or MultiBinary action space; ``UnsupportedSpaceError`` otherwise."""
        kind = type(space).__name__
        if output_range[0] >= output_range[1]:
            raise ValueError(f"output_range must be (low, high) with low < high, got {output_range}")
        if kind == "Discrete":
            return cls(kind, int(space.n), start=int(space.start), output_range=output_range)
        if kind == "Box" and len(space.shape) == 1:
            return cls(kind, int(space.shape[0]), np.asarray(space.low, np.float64),
                       np.asarray(space.high, np.float64), output_range=output_range)
        if kind == "MultiBinary" and np.ndim(space.n) == 0:
            return cls(kind, int(space.n), output_range=output_range)
        raise UnsupportedSpaceError(f"{env_name}: action space {space} ({kind}) is not supported; expected "
                                    f"Discrete, a 1-D Box or a 1-D MultiBinary")

    def actions(self, outputs: np.ndarray) -> np.ndarray:
        """One action per row of ``outputs``: ints (Discrete), floats in the bounds (Box) or 0/1 (MultiBinary)."""
        lo, hi = self.output_range
        if self.kind == "Discrete":
            return outputs.argmax(axis=1) + self.start
        if self.kind == "MultiBinary":
            return (outputs > (lo + hi) / 2).astype(np.int8)
        unit = (np.clip(outputs, lo, hi) - lo) / (hi - lo)
        bounded = np.isfinite(self.low) & np.isfinite(self.high)
        low, span = np.where(bounded, self.low, 0.0), np.where(bounded, self.high - self.low, 0.0)
        scaled = np.where(bounded, low + unit * span, outputs)
        return np.clip(scaled, self.low, self.high)
