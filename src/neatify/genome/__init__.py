"""Genomes: genes, the ``Genome`` view, ``GenomeBatch`` (a generation's genes as arrays) and innovation numbers.

``reference`` holds the per-genome operators (mutation, crossover, distance): the plain executable
specification that the batched breeding and speciation are tested against; the run loop does not call it.
"""
