"""The ``neatify`` command: ``run``, ``master``, ``worker``, ``status`` (see docs/cli.md)."""

from neatify.cli.main import main

__all__ = ["main"]
