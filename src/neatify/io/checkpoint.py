"""Saving and restoring a whole run as JSON (gzipped when the path ends in ``.gz``), never pickle.

What is read is checked in full before anything uses it (each genome with the check the workers run
on the wire), so a damaged file is a ``CheckpointError`` naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neatify.io.schema import genome_dict_problem, is_finite, is_id, is_int, is_number, shown
from neatify.config import ConfigError, EvolutionConfig
from neatify.genome.genome import Genome
from neatify.population import GenerationStats, Population

FORMAT = "neatify-checkpoint"
GENOME_FORMAT = "neatify-genome"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, damaged, of an unknown format or version, or cannot be written."""


class Checkpoint:
    """Write a population to disk and read it back; the restored run continues exactly."""

    @staticmethod
    def save(population: Population, path: str | Path, epoch: int | None = None) -> None:
        """Write atomically: a crash mid-save leaves the previous checkpoint intact (``epoch``: that of the
        distributed master writing it, see ``read_run``)."""
        Checkpoint.save_state(population.state_dict(), path, epoch)

    @staticmethod
    def save_state(state: dict[str, Any], path: str | Path, epoch: int | None = None) -> None:
        """``save`` of a ``Population.state_dict()`` already taken (a standby's replicated state, say)."""
        _write_json({"format": FORMAT, "version": VERSION, "population": state,
                     **({} if epoch is None else {"epoch": epoch})}, path)

    @staticmethod
    def load(path: str | Path, cls: type[Population] = Population) -> Population:
        """The population saved in ``path``, ready to continue (CheckpointError if the file is damaged)."""
        return cls.from_state_dict(Checkpoint.read_state(path))

    @staticmethod
    def read_state(path: str | Path) -> dict[str, Any]:
        """The population state stored in a checkpoint, as plain data, checked in full."""
        return Checkpoint.read_run(path)[0]

    @staticmethod
    def read_run(path: str | Path) -> tuple[dict[str, Any], int | None]:
        """``read_state`` and the epoch of the distributed master that saved it (None: not saved by one that
        gave its epoch), so a master restarted from its checkpoint keeps the epoch its workers have served."""
        data = _read_json(path)
        epoch = data.get("epoch")
        if epoch is not None and not (is_int(epoch) and epoch >= 1):
            raise CheckpointError(f"{path}: epoch must be a positive integer, got {shown(epoch)}")
        return _population_state(data, path), epoch

    @staticmethod
    def export_genome_json(genome: Genome, path: str | Path) -> None:
        """A single genome (a champion, say) as readable JSON."""
        _write_json({"format": GENOME_FORMAT, "version": VERSION, "genome": genome.to_dict()}, path, indent=2)

    @staticmethod
    def load_genome_json(path: str | Path) -> Genome:
        """The genome of a file written by ``export_genome_json`` (CheckpointError if it is damaged)."""
        return _genome(_read_json(path), path)

    @staticmethod
    def load_file(path: str | Path) -> Population | Genome:
        """Whatever ``path`` holds: a checkpoint's population or an exported genome."""
        data = _read_json(path)
        if data.get("format") == GENOME_FORMAT:
            return _genome(data, path)
        return Population.from_state_dict(_population_state(data, path))

    @staticmethod
    def check_writable(path: str | Path) -> None:
        """Raise CheckpointError unless a checkpoint can be saved at ``path``: call it before a long run."""
        path = Path(path)
        if path.is_dir():
            raise CheckpointError(f"{path}: cannot write a checkpoint there: it is a directory")
        tmp = _tmp_path(path)
        try:
            tmp.open("wb").close()
            tmp.unlink()
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot write a checkpoint there: {exc.strerror}") from None


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _write_json(data: dict[str, Any], path: str | Path, indent: int | None = None) -> None:
    path = Path(path)
    text = json.dumps(data, indent=indent, allow_nan=False).encode()
    tmp = _tmp_path(path)
    with (gzip.open(tmp, "wb") if path.suffix == ".gz" else open(tmp, "wb")) as fh:
        fh.write(text)
    os.replace(tmp, path)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a checkpoint may hold")


def _read_json(path: str | Path) -> dict[str, Any]:
    """The top-level object of a JSON (or gzipped JSON) file; every failure a CheckpointError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc.strerror}") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error):
            raise CheckpointError(f"{path}: cannot read checkpoint: truncated or corrupt gzip data") from None
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: cannot read checkpoint: not UTF-8 text") from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: cannot read checkpoint: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a checkpoint (top level is not an object)")
    return data


def _check_format(data: dict[str, Any], name: str, path: str | Path) -> None:
    if data.get("format") != name or data.get("version") != VERSION:
        raise CheckpointError(f"{path}: not a {name} version {VERSION} file")


def _genome(data: dict[str, Any], path: str | Path) -> Genome:
    _check_format(data, GENOME_FORMAT, path)
    problem = genome_dict_problem(data.get("genome"))
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return Genome.from_dict(data["genome"])


def _population_state(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    _check_format(data, FORMAT, path)
    problem = state_problem(data.get("population"))
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return data["population"]


# --- what a Population.state_dict() looks like ---
Check = Callable[[Any], bool]
Fields = dict[str, tuple[Check, str]]


def _int_rows(width: int) -> Check:
    return lambda value: isinstance(value, list) and all(
        isinstance(row, list) and len(row) == width and all(is_int(v) for v in row) for row in value)


def _is_rng_state(value: Any) -> bool:
    """``random.Random.getstate()`` as JSON: [3, 624 words and an index, the cached gauss value or null]."""
    return (isinstance(value, list) and len(value) == 3 and is_int(value[0]) and value[0] == 3
            and isinstance(value[1], list) and len(value[1]) == 625
            and all(is_int(v) and 0 <= v < 2**32 for v in value[1]) and value[1][-1] <= 624
            and (value[2] is None or is_finite(value[2])))


_MAP = (lambda v: isinstance(v, dict), "a map")
_LIST = (lambda v: isinstance(v, list), "a list")
_COUNT = (is_id, "a non-negative integer")
_POSITIVE = (lambda v: is_id(v) and v >= 1, "a positive integer")
_FINITE = (is_finite, "a finite number")
_FITNESS = (lambda v: v is None or is_finite(v), "a finite number or null")

_STATE_FIELDS: Fields = {
    "config": _MAP,
    "num_inputs": _POSITIVE,
    "num_outputs": _POSITIVE,
    "seed": (lambda v: is_number(v) or isinstance(v, str), "a number or a string"),
    "rng": (_is_rng_state, "a random generator state [3, [625 integers below 2**32], number or null]"),
    "tracker": _MAP,
    "generation": _COUNT,
    "next_genome_id": _COUNT,
    "next_species_id": _COUNT,
    "compatibility_threshold": _FINITE,
    "evaluations": _COUNT,
    "evaluated": (lambda v: isinstance(v, bool), "true or false"),
    "genomes": (lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list"),
    "species": _LIST,
    "best_genome": (lambda v: v is None or isinstance(v, dict), "a genome or null"),
    "history": _LIST,
}
_TRACKER_FIELDS: Fields = {
    "next_innovation": _COUNT,
    "next_node_id": _COUNT,
    "connections": (_int_rows(3), "a list of [in node, out node, innovation]"),
    "splits": (_int_rows(2), "a list of [innovation, node id]"),
}
_SPECIES_FIELDS: Fields = {
    "id": _COUNT,
    "representative": (_MAP[0], "a genome"),
    "created": _COUNT,
    "members": (lambda v: isinstance(v, list) and len(v) > 0 and all(is_int(i) for i in v),
                "a non-empty list of genome ids"),
    "best_fitness": _FITNESS,
    "last_improved": _COUNT,
    "staleness": _COUNT,
}
_HISTORY_FIELDS: Fields = {f.name: _COUNT if f.type == "int" else _FINITE for f in dataclasses.fields(GenerationStats)}
_STATISTICS_FIELDS: Fields = {
    **_HISTORY_FIELDS, "median_fitness": _FINITE, "stdev_fitness": _FINITE, "seconds": _FINITE,
    "species_sizes": (lambda v: isinstance(v, dict) and all(is_id(k) and is_id(n) for k, n in v.items()),
                      "a map of species id to size"),
}


def _fields_problem(data: Any, fields: Fields, where: str) -> str | None:
    """What is wrong with the keys and values of map ``data`` (called ``where`` in the message)."""
    if not isinstance(data, dict):
        return f"{where} must be a map, got {shown(data)}"
    missing = [key for key in fields if key not in data]
    if missing:
        return f"{where} lacks key(s) {', '.join(missing)}"
    unknown = sorted(str(key) for key in data if key not in fields)
    if unknown:
        return f"{where} has unknown key(s) {', '.join(unknown)}"
    for key, (check, what) in fields.items():
        if not check(data[key]):
            return f"{where}.{key} must be {what}, got {shown(data[key])}"
    return None


def state_problem(state: Any) -> str | None:
    """Why ``state`` is not a ``Population.state_dict()`` a run can continue from (None when it is)."""
    problem = _fields_problem(state, _STATE_FIELDS, "population")
    if problem:
        return problem
    try:
        EvolutionConfig.from_dict(state["config"])
    except ConfigError as exc:
        return f"population.config: {exc}"
    tracker = state["tracker"]
    problem = _fields_problem(tracker, _TRACKER_FIELDS, "population.tracker")
    if problem:
        return problem
    if tracker["next_node_id"] < state["num_inputs"] + state["num_outputs"]:
        return (f"population.tracker.next_node_id {tracker['next_node_id']} is an input or output node id "
                f"({state['num_inputs']} inputs, {state['num_outputs']} outputs)")
    for check in (_genomes_problem, _species_problem, _best_genome_problem):
        problem = check(state)
        if problem:
            return problem
    for i, row in enumerate(state["history"]):
        problem = _fields_problem(row, _HISTORY_FIELDS, f"population.history[{i}]")
        if problem:
            return problem
    return None


def statistics_problem(rows: Any) -> str | None:
    """Why ``rows`` are not the rows of a ``StatisticsReporter`` (None when they are)."""
    if not isinstance(rows, list):
        return f"statistics must be a list, got {shown(rows)}"
    for i, row in enumerate(rows):
        problem = _fields_problem(row, _STATISTICS_FIELDS, f"statistics[{i}]")
        if problem:
            return problem
    return None


def _genome_problem(data: Any, label: str, state: dict[str, Any]) -> str | None:
    """A genome of this population: valid, of its size, and made of ids its counters already gave out."""
    problem = genome_dict_problem(data)
    if problem:
        return f"{label}: {problem}"
    if (data["num_inputs"], data["num_outputs"]) != (state["num_inputs"], state["num_outputs"]):
        return (f"{label}: has {data['num_inputs']} inputs and {data['num_outputs']} outputs, the population "
                f"{state['num_inputs']} and {state['num_outputs']}")
    if data["id"] >= state["next_genome_id"]:
        return f"{label}: id {data['id']} is not below population.next_genome_id {state['next_genome_id']}"
    tracker = state["tracker"]
    node = max(node[0] for node in data["nodes"])
    if node >= tracker["next_node_id"]:
        return f"{label}: node {node} is not below population.tracker.next_node_id {tracker['next_node_id']}"
    innovation = max((conn[0] for conn in data["connections"]), default=-1)
    if innovation >= tracker["next_innovation"]:
        return (f"{label}: innovation {innovation} is not below population.tracker.next_innovation "
                f"{tracker['next_innovation']}")
    return None


def _label(data: Any, fallback: str) -> str:
    return f"genome {data['id']}" if isinstance(data, dict) and is_int(data.get("id")) else fallback


def _genomes_problem(state: dict[str, Any]) -> str | None:
    seen: set[int] = set()
    for i, data in enumerate(state["genomes"]):
        label = _label(data, f"population.genomes[{i}]")
        problem = _genome_problem(data, label, state)
        if problem:
            return problem
        if data["id"] in seen:
            return f"{label}: id appears twice in population.genomes"
        if state["evaluated"] and data["fitness"] is None:
            return f"{label}: no fitness, yet population.evaluated is true"
        seen.add(data["id"])
    return None


def _best_genome_problem(state: dict[str, Any]) -> str | None:
    best = state["best_genome"]
    if best is None:
        return None
    problem = _genome_problem(best, "population.best_genome", state)
    if problem is None and best["fitness"] is None:
        problem = "population.best_genome: has no fitness"
    return problem


def _species_problem(state: dict[str, Any]) -> str | None:
    """Species with unique ids, valid representatives, and members that are the population's genomes, once each."""
    unplaced = {g["id"] for g in state["genomes"]}
    ids: set[int] = set()
    for i, species in enumerate(state["species"]):
        problem = _fields_problem(species, _SPECIES_FIELDS, f"population.species[{i}]")
        if problem:
            return problem
        label = f"species {species['id']}"
        if species["id"] in ids or species["id"] >= state["next_species_id"]:
            return f"{label}: id is a duplicate or not below population.next_species_id {state['next_species_id']}"
        ids.add(species["id"])
        if max(species["created"], species["last_improved"]) > state["generation"]:
            return f"{label}: created or last improved after population.generation {state['generation']}"
        problem = _genome_problem(species["representative"], f"{label} representative", state)
        if problem:
            return problem
        for member in species["members"]:
            if member not in unplaced:
                return f"{label}: member {member} is not a genome of the population, or in another species too"
            unplaced.remove(member)
    if unplaced:
        return f"genome {min(unplaced)} is in no species"
    return None
