"""Speciation: compatibility distances over the whole batch, species, fitness sharing and stagnation."""
