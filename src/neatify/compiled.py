"""Loops over ragged gene arrays, compiled to machine code by numba at their first call.

Some steps of a generation walk every gene of the population with data-dependent control flow (merging
two genomes' sorted genes, for one): numpy would need many full passes for what one compiled loop does
in one. numba is imported and each loop compiled only when first called, so importing neatify (a
worker, a CLI command) does not pay for it; compiled code is cached on disk (``cache=True``), so a
later process loads it instead of compiling again. ``NUMBA_DISABLE_JIT=1`` runs them as plain Python.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """``fn`` compiled with ``numba.njit`` when first called (``fn.__wrapped__`` is the Python original)."""
    kernel: Callable[..., Any] | None = None

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        nonlocal kernel
        if kernel is None:
            import numba

            kernel = numba.njit(cache=True, nogil=True)(fn)
        return kernel(*args)

    return call  # type: ignore[return-value]
