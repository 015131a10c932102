"""Public import path of the reporters (``from neatify.reporters import ProgressReporter``); the code lives
in ``neatify.reporting.reporters``."""

from neatify.reporting.reporters import CheckpointReporter, ProgressReporter, Reporter, StatisticsReporter

__all__ = ["CheckpointReporter", "ProgressReporter", "Reporter", "StatisticsReporter"]
