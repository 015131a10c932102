"""Watching a run: reporters called each generation (progress, statistics, checkpoints) and plots."""
