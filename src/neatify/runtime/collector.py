"""Keeping Python's cycle collector off what lives before a run: torch alone is a great many objects,
every full collection walks all of them, and a large population sets one off every few generations
(the cost is measured in docs/batched.md, "The population as arrays")."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

OPT_OUT = "NEATIFY_GC_FREEZE"
"""Environment variable: ``0`` leaves the collector as it is."""

_frozen = False


def freeze_once(environ: Mapping[str, str] = os.environ) -> bool:
    """Once per process (unless ``NEATIFY_GC_FREEZE=0``): collect, then move every object alive to the
    collector's permanent generation (``gc.freeze``), so later full collections walk only what the run
    makes. Those objects are still freed when their last reference goes; only a reference cycle among
    them that becomes garbage later is kept. True if it froze now."""
    global _frozen
    if _frozen or environ.get(OPT_OUT, "1") == "0":
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    return True


@contextmanager
def paused() -> Iterator[None]:
    """No collection while the block builds many objects that hold no cycles (a population's plain-data
    state: a list or dict per genome and gene, which would otherwise set off full collections that walk
    everything alive, none of it garbage); the collector's previous setting is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
