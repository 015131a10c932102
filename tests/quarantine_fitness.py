"""A fitness function for the quarantine tests' real workers (``neatify worker quarantine_fitness:killing_fitness``)."""

from __future__ import annotations

import os
import signal

from xor_task import xor_fitness

VICTIM_ENV = "NEATIFY_TEST_KILL_GENOME"
"""The id of the genome whose evaluation kills the worker's process."""


def killing_fitness(genomes) -> None:
    """``xor_fitness``, but the process SIGKILLs itself (as a segfault or an OOM kill would end it) on reaching
    the genome ``$NEATIFY_TEST_KILL_GENOME``."""
    victim = int(os.environ[VICTIM_ENV])
    for genome in genomes:
        if genome.id == victim:
            os.kill(os.getpid(), signal.SIGKILL)
    xor_fitness(genomes)
