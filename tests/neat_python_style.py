"""Fitness functions as a user coming from neat-python writes them, and one that fails: for the tests of the
hints (and the worker processes they start, which import this module)."""


def eval_genomes(genomes, config):
    """neat-python's signature: (genome_id, genome) pairs and its config."""
    for genome_id, genome in genomes:
        genome.fitness = 1.0


def unpacking(genomes):
    """NEATify's signature, neat-python's loop."""
    for genome_id, genome in genomes:
        genome.fitness = 1.0


def failing(genomes):
    raise ValueError("fitness exploded")
