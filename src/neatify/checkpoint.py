"""Saving and restoring a whole run as JSON (gzipped when the path ends in ``.gz``), never pickle."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from neatify.genome import Genome
from neatify.population import Population

FORMAT = "neatify-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a neatify checkpoint of a known version."""


class Checkpoint:
    """Write a population to disk and read it back; the restored run continues exactly."""

    @staticmethod
    def save(population: Population, path: str | Path) -> None:
        """Write atomically: a crash mid-save leaves the previous checkpoint intact."""
        _write_json({"format": FORMAT, "version": VERSION, "population": population.state_dict()}, path)

    @staticmethod
    def load(path: str | Path, cls: type[Population] = Population) -> Population:
        return cls.from_state_dict(Checkpoint.read_state(path))

    @staticmethod
    def read_state(path: str | Path) -> dict[str, Any]:
        """The population state stored in a checkpoint, as plain data."""
        data = _read_json(path)
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise CheckpointError(f"{path}: not a {FORMAT} version {VERSION} file")
        return data["population"]

    @staticmethod
    def export_genome_json(genome: Genome, path: str | Path) -> None:
        """A single genome (a champion, say) as readable JSON."""
        _write_json({"format": "neatify-genome", "version": VERSION, "genome": genome.to_dict()}, path, indent=2)

    @staticmethod
    def load_genome_json(path: str | Path) -> Genome:
        data = _read_json(path)
        if data.get("format") != "neatify-genome":
            raise CheckpointError(f"{path}: not a neatify-genome file")
        return Genome.from_dict(data["genome"])


def _write_json(data: dict[str, Any], path: str | Path, indent: int | None = None) -> None:
    path = Path(path)
    text = json.dumps(data, indent=indent, allow_nan=False).encode()
    tmp = path.with_name(path.name + ".tmp")
    with (gzip.open(tmp, "wb") if path.suffix == ".gz" else open(tmp, "wb")) as fh:
        fh.write(text)
    os.replace(tmp, path)


def _read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a checkpoint (top level is not an object)")
    return data
