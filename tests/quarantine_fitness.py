"""A fitness function for the quarantine tests' real workers (``neatify worker quarantine_fitness:killing_fitness``)."""

from __future__ import annotations

import os
import signal

from xor_task import xor_fitness

VICTIM_ENV = "NEATIFY_TEST_KILL_GENOME"
"""The ids (comma-separated) of the genomes whose evaluation kills the worker's process."""


def killing_fitness(genomes) -> None:
    """``xor_fitness``, but the process SIGKILLs itself (as a segfault or an OOM kill would end it) on reaching
    a genome of ``$NEATIFY_TEST_KILL_GENOME``."""
    victims = {int(text) for text in os.environ[VICTIM_ENV].split(",")}
    for genome in genomes:
        if genome.id in victims:
            os.kill(os.getpid(), signal.SIGKILL)
    xor_fitness(genomes)
