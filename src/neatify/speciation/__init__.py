"""Speciation: compatibility distances over the whole batch, species and their bookkeeping, and the
threshold steered toward a target species count (fitness sharing and stagnation act in ``neatify.breeding``)."""
