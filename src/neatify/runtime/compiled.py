"""Loops over ragged gene arrays, compiled to machine code by numba at their first call.

Some steps of a generation walk every gene of the population with data-dependent control flow (merging
two genomes' sorted genes, searching one genome's graph): numpy would need many full passes for what
one compiled loop does in one. numba is imported and each loop compiled only when first called, so
importing neatify (a worker, a CLI command) does not pay for it; compiled code is cached on disk
(``cache=True``), so a later process loads it instead of compiling again. ``NUMBA_DISABLE_JIT=1``
runs them as plain Python.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """``fn`` compiled with ``numba.njit`` when first called (``fn.__wrapped__`` is the Python original).
    It may call other ``compiled`` functions of its own module: they are compiled first and called as
    compiled code (numba's disk cache checks only the caller's source file, so a callee elsewhere could
    change under a stale cached caller)."""
    return _compiled(fn, {})


def compiled_unchecked_division(fn: F) -> F:
    """``compiled``, a float division by zero giving inf or nan as in numpy instead of raising: no test
    before each division, for loops that divide by what cannot be zero many times a step (numba's
    ``error_model="numpy"``). numba's disk cache does not key on options: compile a function one way only."""
    return _compiled(fn, {"error_model": "numpy"})


def _compiled(fn: F, options: dict[str, Any]) -> F:
    """``fn`` compiled with ``options`` when first called (see ``compiled``)."""
    kernel: Callable[..., Any] | None = None

    def compile_once() -> Callable[..., Any]:
        nonlocal kernel
        if kernel is None:
            kernel = _jit(fn, options)
        return kernel

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        return (kernel or compile_once())(*args)

    call.compile_once = compile_once  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


def _jit(fn: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
    """numba's compiled ``fn``, seeing the compiled form of every ``compiled`` function it names."""
    import numba

    names = dict(fn.__globals__)
    for name in fn.__code__.co_names:
        callee = names.get(name)
        if hasattr(callee, "compile_once"):
            if callee.__module__ != fn.__module__:
                raise TypeError(f"compiled {fn.__qualname__} calls {callee.__module__}.{name}: a compiled loop may "
                                f"only call compiled loops of its own module ({fn.__module__})")
            names[name] = callee.compile_once()
    seeing = types.FunctionType(fn.__code__, names, fn.__name__, fn.__defaults__, fn.__closure__)
    seeing.__qualname__, seeing.__module__ = fn.__qualname__, fn.__module__
    return numba.njit(cache=True, nogil=True, **options)(seeing)
