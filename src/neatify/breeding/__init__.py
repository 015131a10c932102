"""Breeding a generation: ``reproduction`` plans who mates with whom per species; ``operators`` and
``structure`` make every child's genes at once as array operations over the parents' ``GenomeBatch``."""
