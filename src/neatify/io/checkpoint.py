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
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from neatify.io.schema import Finite, Id, PositiveId, Schema, genome_dict_problem, is_int, problem, shown
from neatify.config import ConfigError, EvolutionConfig
from neatify.genome.genome import Genome
from neatify.objectives.elites import EliteArchive
from neatify.population import GenerationStats, Population

FORMAT = "neatify-checkpoint"
GENOME_FORMAT = "neatify-genome"
ELITES_FORMAT = "neatify-elites"
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
    def save_state(state: dict[str, Any], path: str | Path, epoch: int | None = None,
                   leader: str | None = None) -> None:
        """``save`` of a ``Population.state_dict()`` already taken (a standby's replicated state, say); ``leader``:
        who led ``epoch`` (the fencing token, with the epoch; see ``read_fenced``)."""
        _write_json({"format": FORMAT, "version": VERSION, "population": state,
                     **({} if epoch is None else {"epoch": epoch}),
                     **({} if leader is None else {"leader": leader})}, path)

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
        state, epoch, _ = Checkpoint.read_fenced(path)
        return state, epoch

    @staticmethod
    def read_fenced(path: str | Path) -> tuple[dict[str, Any], int | None, str | None]:
        """``read_run`` and who led the epoch (None in a checkpoint written before fencing tokens, or by no
        master): a master resuming a checkpoint another one led takes a newer epoch."""
        data = _read_json(path)
        epoch, leader = data.get("epoch"), data.get("leader")
        if epoch is not None and not (is_int(epoch) and epoch >= 1):
            raise CheckpointError(f"{path}: epoch must be a positive integer, got {shown(epoch)}")
        if leader is not None and not isinstance(leader, str):
            raise CheckpointError(f"{path}: leader must be a string, got {shown(leader)}")
        return _population_state(data, path), epoch, leader

    @staticmethod
    def export_genome_json(genome: Genome, path: str | Path) -> None:
        """A single genome (a champion, say) as readable JSON."""
        _write_json({"format": GENOME_FORMAT, "version": VERSION, "genome": genome.to_dict()}, path, indent=2)

    @staticmethod
    def load_genome_json(path: str | Path) -> Genome:
        """The genome of a file written by ``export_genome_json`` (CheckpointError if it is damaged)."""
        return _genome(_read_json(path), path)

    @staticmethod
    def export_elites_json(archive: EliteArchive, path: str | Path) -> None:
        """An archive of elites as readable JSON: its grid, and per cell the elite's behaviour, fitness and genome."""
        _write_json({"format": ELITES_FORMAT, "version": VERSION, "archive": archive.to_dict()}, path, indent=1)

    @staticmethod
    def load_elites_json(path: str | Path) -> EliteArchive:
        """The archive of a file written by ``export_elites_json`` (CheckpointError if it is damaged)."""
        data = _read_json(path)
        _check_format(data, ELITES_FORMAT, path)
        found = problem(data.get("archive"), _EliteArchive, "archive") or _elites_problem(data["archive"])
        if found:
            raise CheckpointError(f"{path}: {found}")
        return EliteArchive.from_dict(data["archive"])

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
    found = genome_dict_problem(data.get("genome"))
    if found:
        raise CheckpointError(f"{path}: {found}")
    return Genome.from_dict(data["genome"])


def _population_state(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    _check_format(data, FORMAT, path)
    found = state_problem(data.get("population"))
    if found:
        raise CheckpointError(f"{path}: {found}")
    return data["population"]


# --- what a Population.state_dict() looks like ---
_Word = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]


class _Tracker(Schema):
    next_innovation: Id
    next_node_id: Id
    connections: list[tuple[int, int, int]]
    """[in node, out node, innovation] rows."""
    splits: list[tuple[int, int]]
    """[innovation, node id] rows."""


class _Species(Schema):
    id: Id
    representative: dict[str, Any]
    """A genome (checked as one of the population's)."""
    created: Id
    members: Annotated[list[int], msgspec.Meta(min_length=1)]
    """Genome ids."""
    best_fitness: Finite | None
    last_improved: Id
    staleness: Id


class _NoveltyArchive(Schema):
    threshold: Finite
    stalled: Id
    behaviours: list[list[Finite]]


class _Elite(Schema):
    cell: list[Id]
    fitness: Finite
    behaviour: list[Finite]
    genome: dict[str, Any]
    """A genome (checked as one of the population's)."""


class _EliteArchive(Schema):
    bounds: list[tuple[Finite, Finite]]
    cells: PositiveId
    elites: list[_Elite]


class _Selection(Schema):
    novelty: list[Finite] | None
    archive: _NoveltyArchive | None
    elites: _EliteArchive | None


class _State(Schema):
    config: dict[str, Any]
    """An ``EvolutionConfig.to_dict()`` (checked by ``EvolutionConfig.from_dict``)."""
    num_inputs: PositiveId
    num_outputs: PositiveId
    seed: int | float | str
    rng: tuple[Literal[3], Annotated[list[_Word], msgspec.Meta(min_length=625, max_length=625)], Finite | None]
    """``random.Random.getstate()``: [3, 624 words and an index, the cached gauss value or null]."""
    tracker: _Tracker
    generation: Id
    next_genome_id: Id
    next_species_id: Id
    compatibility_threshold: Finite
    evaluations: Id
    evaluated: bool
    genomes: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)]
    """Genomes (each checked as one of the population's)."""
    species: list[_Species]
    best_genome: dict[str, Any] | None
    history: list[_History]
    behaviours: list[list[Finite] | None] | None = None
    """Beyond one fitness number (absent in a run of fitness alone): the told generation's behaviours (a failed
    genome's: null) ..."""
    scores: list[Finite] | None = None
    """... what breeding selects on ..."""
    selection: _Selection | None = None
    """... and the novelty archive and the archive of elites (``neatify.objectives.selection.Selection``)."""
    refine: dict[str, Any] | None = None
    """The weight search's state (``neatify.breeding.refine``), only when ``refine_samples`` is set."""
    generation_context: dict[str, Any] | None = None
    """A reporter's ``generation_context()`` (``neatify.evaluation``; a normalised gym task's observation
    statistics), handed back to it on resuming; absent without one."""


_STATS = [(f.name, Id if f.type == "int" else Finite) for f in dataclasses.fields(GenerationStats)]
_History = msgspec.defstruct("_History", _STATS, bases=(Schema,))
_StatisticsRow = msgspec.defstruct(
    "_StatisticsRow", [*_STATS, ("median_fitness", Finite), ("stdev_fitness", Finite), ("seconds", Finite),
                       ("species_sizes", dict[Id, Id])], bases=(Schema,))


def state_problem(state: Any) -> str | None:
    """Why ``state`` is not a ``Population.state_dict()`` a run can continue from (None when it is)."""
    found = problem(state, _State, "population")
    if found:
        return found
    if state["rng"][1][-1] > 624:
        return f"population.rng: the index {state['rng'][1][-1]} of its state is beyond 624"
    try:
        EvolutionConfig.from_dict(state["config"])
    except ConfigError as exc:
        return f"population.config: {exc}"
    tracker = state["tracker"]
    if tracker["next_node_id"] < state["num_inputs"] + state["num_outputs"]:
        return (f"population.tracker.next_node_id {tracker['next_node_id']} is an input or output node id "
                f"({state['num_inputs']} inputs, {state['num_outputs']} outputs)")
    for check in (_genomes_problem, _species_problem, _best_genome_problem, _beyond_fitness_problem):
        found = check(state)
        if found:
            return found
    return None


def statistics_problem(rows: Any) -> str | None:
    """Why ``rows`` are not the rows of a ``StatisticsReporter`` (None when they are)."""
    return problem(rows, list[_StatisticsRow], "statistics")


def _genome_problem(data: Any, label: str, state: dict[str, Any]) -> str | None:
    """A genome of this population: valid, of its size, and made of ids its counters already gave out."""
    found = genome_dict_problem(data)
    if found:
        return f"{label}: {found}"
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
        found = _genome_problem(data, label, state)
        if found:
            return found
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
    found = _genome_problem(best, "population.best_genome", state)
    if found is None and best["fitness"] is None:
        found = "population.best_genome: has no fitness"
    return found


def _beyond_fitness_problem(state: dict[str, Any]) -> str | None:
    """Behaviours and scores one per genome, behaviours and archives of the config's ``behaviour_size`` (a
    genome whose evaluation failed has none: null)."""
    size, count = state["config"].get("behaviour_size", 0), len(state["genomes"])
    selection = state.get("selection") or {}
    rows = {"population.behaviours": state.get("behaviours"),
            "population.selection.archive.behaviours": (selection.get("archive") or {}).get("behaviours"),
            "population.selection.elites.bounds": (selection.get("elites") or {}).get("bounds")}
    for label, values in rows.items():
        if values is not None and any(row is not None and len(row) != size
                                      for row in ([values] if label.endswith("bounds") else values)):
            return f"{label}: every behaviour must have behaviour_size {size} values"
    for label in ("behaviours", "scores"):
        if state.get(label) is not None and len(state[label]) != count:
            return f"population.{label}: {len(state[label])} entries for {count} genomes"
    elites = selection.get("elites")
    found = None if elites is None else _elites_problem(elites)
    for elite in [] if elites is None or found else elites["elites"]:
        found = found or _genome_problem(elite["genome"], f"elite of cell {elite['cell']}", state)
    return None if found is None else f"population.selection.elites: {found}"


def _elites_problem(archive: dict[str, Any]) -> str | None:
    """Elites in cells of the grid, with behaviours of its dimensions and valid genomes."""
    for elite in archive["elites"]:
        label = f"elite of cell {elite['cell']}"
        if len(elite["cell"]) != len(archive["bounds"]) or max(elite["cell"], default=0) >= archive["cells"]:
            return f"{label}: not a cell of the {archive['cells']}-cell grid over {len(archive['bounds'])} dimensions"
        if len(elite["behaviour"]) != len(archive["bounds"]):
            return f"{label}: its behaviour has {len(elite['behaviour'])} values, the grid {len(archive['bounds'])}"
        found = genome_dict_problem(elite["genome"])
        if found:
            return f"{label}: {found}"
    return None


def _species_problem(state: dict[str, Any]) -> str | None:
    """Species with unique ids, valid representatives, and members that are the population's genomes, once each."""
    unplaced = {g["id"] for g in state["genomes"]}
    ids: set[int] = set()
    for species in state["species"]:
        label = f"species {species['id']}"
        if species["id"] in ids or species["id"] >= state["next_species_id"]:
            return f"{label}: id is a duplicate or not below population.next_species_id {state['next_species_id']}"
        ids.add(species["id"])
        if max(species["created"], species["last_improved"]) > state["generation"]:
            return f"{label}: created or last improved after population.generation {state['generation']}"
        found = _genome_problem(species["representative"], f"{label} representative", state)
        if found:
            return found
        for member in species["members"]:
            if member not in unplaced:
                return f"{label}: member {member} is not a genome of the population, or in another species too"
            unplaced.remove(member)
    if unplaced:
        return f"genome {min(unplaced)} is in no species"
    return None
