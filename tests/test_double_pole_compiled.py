"""The compiled double-pole loop equals the numpy reference bit for bit (so benchmark figures stand)."""

import numpy as np
import pytest

from neatify.envs import DoublePole


def _pair(seed: int, carts: int) -> tuple[DoublePole, DoublePole, np.random.Generator]:
    """Two identical batches of random states (some past the limits), some carts already fallen."""
    rng = np.random.default_rng(seed)
    state = rng.normal(size=(carts, 6)) * np.array([1.5, 1.0, 0.3, 0.5, 0.3, 0.5])
    compiled, reference = DoublePole(state), DoublePole(state)
    fallen = rng.random(carts) < 0.2
    for env in (compiled, reference):
        env.alive[fallen] = False
        env.steps[:] = rng.integers(0, 50, carts) if env is compiled else compiled.steps
    return compiled, reference, rng


@pytest.mark.parametrize("seed", range(5))
def test_compiled_steps_equal_numpy_steps_bit_for_bit(seed):
    compiled, reference, rng = _pair(seed, 64)
    alive = []
    for _ in range(30):
        output = rng.random(64) * 1.4 - 0.2  # forces beyond the network's [0, 1] range too
        assert np.array_equal(compiled.step(output), reference.step_numpy(output))
        assert compiled.state.tobytes() == reference.state.tobytes()
        assert np.array_equal(compiled.steps, reference.steps)
        alive.append(int(compiled.alive.sum()))
    assert 64 > alive[0] > alive[10] > 0, f"carts should fall one by one: {alive}"


def test_a_long_standard_run_stays_equal():
    compiled, reference = DoublePole.standard(3), DoublePole.standard(3)
    outputs = np.random.default_rng(7).random((400, 3)) * 0.2 + 0.4
    for output in outputs:
        compiled.step(output), reference.step_numpy(output)
    assert compiled.state.tobytes() == reference.state.tobytes()
    assert np.array_equal(compiled.steps, reference.steps) and compiled.steps.min() > 0


@pytest.mark.parametrize("outputs", [1, 11])
def test_a_step_given_other_than_one_output_a_cart_names_both_counts(outputs):
    carts = DoublePole.standard(10)
    with pytest.raises(ValueError, match=f"10 carts, {outputs} outputs"):
        carts.step(np.full(outputs, 0.9))
    assert (carts.steps == 0).all()
