"""neatify.runtime.compiled: loops compiled at first call, the same results as their Python originals."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from neatify.speciation.species import _distances


@pytest.mark.slow
def test_importing_neatify_does_not_import_numba():
    code = "import sys, neatify, neatify.speciation.species, neatify.breeding.structure; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_a_compiled_loop_gives_what_its_python_original_gives():
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 12, 300)
    start = np.concatenate(([0], np.cumsum(counts)))
    innovation = np.concatenate([np.sort(rng.choice(40, c, replace=False)) for c in counts]).astype(np.int64)
    weight = rng.normal(size=len(innovation))
    ref_innovation, ref_weight = np.array([1, 3, 7, 20, 33], dtype=np.int64), rng.normal(size=5)
    compiled_out, python_out = np.empty(300), np.empty(300)
    arguments = (start, innovation, weight, ref_innovation, ref_weight, 1.0, 1.0, 0.4, 20.0)
    _distances(*arguments, compiled_out)
    _distances.__wrapped__(*arguments, python_out)
    assert np.array_equal(compiled_out, python_out)
    assert len(np.unique(compiled_out)) > 50  # the rows differ: the loop really measured something


def test_a_compiled_loop_calling_one_of_another_module_is_refused_by_name():
    from neatify.runtime.compiled import compiled

    @compiled
    def caller(x):
        return _distances(x)

    with pytest.raises(TypeError, match="calls neatify.speciation.species._distances: a compiled loop may only call"):
        caller(1)
