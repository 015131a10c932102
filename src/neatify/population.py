"""The evolution loop: a population of genomes evaluated, speciated and bred generation by generation."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neatify.breeding.refine import Refiner
from neatify.breeding.reproduction import reproduce
from neatify.config import EvolutionConfig
from neatify.evaluation import FitnessError as FitnessError  # re-exported: neatify.population.FitnessError
from neatify.evaluation import check_behaviour, check_fitness, generation_context, tell_generation
from neatify.genome.batch import GenomeBatch, plain_genomes, rows_of
from neatify.genome.genome import Genome
from neatify.genome.innovation import InnovationTracker
from neatify.genome.rows import RowState
from neatify.objectives.selection import Selection
from neatify.runtime.collector import freeze_once, paused
from neatify.speciation.species import Species, adapt_threshold, speciate_steered

if TYPE_CHECKING:
    from neatify.reporting.reporters import Reporter  # reporters sit above the loop (they checkpoint it)

logger = logging.getLogger("neatify")

FitnessFunction = Callable[[list[Genome]], Any]
"""Called with every genome of a generation; sets ``genome.fitness`` on each (higher is better)."""


_WRITE_INSTEAD = ("NEATify calls fitness_fn(genomes) with a list of Genome objects; write\n"
                  "    def fitness(genomes):\n"
                  "        for genome in genomes:\n"
                  "            genome.fitness = ...  # higher is better; the id is genome.id")


class NeatPythonFitnessError(TypeError):
    """A fitness function written for neat-python's calling convention; the message says what to write."""


def neat_python_hint(fitness_fn: Callable[..., Any], genomes: list[Genome], exc: Exception) -> str | None:
    """What to write instead when ``exc`` comes from a fitness function written for neat-python
    (``eval_genomes(genomes, config)``, ``for genome_id, genome in genomes``); None otherwise."""
    if "cannot unpack non-iterable Genome" in str(exc):
        return f"the fitness function unpacks (genome_id, genome) pairs, as neat-python's do. {_WRITE_INSTEAD}"
    try:
        inspect.signature(fitness_fn).bind(genomes)
    except TypeError:
        name = getattr(fitness_fn, "__name__", type(fitness_fn).__name__)
        return (f"fitness function {name}{inspect.signature(fitness_fn)} cannot be called with the genomes "
                f"alone (neat-python passes (genomes, config)). {_WRITE_INSTEAD}")
    except ValueError:  # no signature to inspect (a builtin)
        pass
    return None


@dataclass
class GenerationStats:
    """What one evaluated generation looked like."""

    generation: int
    best_fitness: float
    mean_fitness: float
    num_species: int
    mean_hidden: float
    mean_connections: float
    evaluations: int
    """Genomes evaluated so far in the run, this generation included."""


class Population:
    """A NEAT population: ``genomes = pop.ask()`` then ``pop.tell(fitness)``, or ``run_generation(fitness_fn)``
    (the two in one), repeatedly; or ``run(...)``.

    A generation is held as arrays, as the genes and fitness of a batch of solutions: its genes in one
    ``GenomeBatch`` (``batch``), its fitness in one array (``fitness``); ``genomes`` are views of its rows,
    whose ``fitness`` reads and writes that array. Everything random comes from one ``random.Random(seed)``,
    and nothing depends on the order in which genomes are evaluated, so the same seed and a deterministic
    fitness give the same run.
    """

    def __init__(self, pop_size: int | None = None, num_inputs: int = 2, num_outputs: int = 1,
                 config: EvolutionConfig | None = None, seed: int | None = None) -> None:
        config = config if config is not None else EvolutionConfig()
        if pop_size is not None and pop_size != config.population_size:
            config = config.replace(population_size=pop_size)
        num_inputs, num_outputs = int(num_inputs), int(num_outputs)  # numpy ints (gym spaces) welcome
        if num_inputs < 1 or num_outputs < 1:
            raise ValueError(f"need at least one input and one output, got {num_inputs} and {num_outputs}")
        self.config = config
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
        self.rng = random.Random(self.seed)
        self.tracker = InnovationTracker(0, num_inputs + num_outputs)
        self.generation = 0
        self.next_genome_id = 0
        self.next_species_id = 0
        self.compatibility_threshold = config.compatibility_threshold
        self.best_genome: Genome | None = None
        self.history: list[GenerationStats] = []
        self.evaluations = 0
        self.reporters: list[Reporter] = []
        self._saved_context: dict[str, Any] | None = None
        """A resumed run's saved ``generation_context``, told to reporters added before its next ``ask``."""
        self.evaluated = False
        """Whether the generation carries its fitness (told; the next ``ask`` then breeds first)."""
        self._asked = False
        self.selection = Selection(config)
        """What breeding selects on beyond fitness, and the archives kept beside the run (``neatify.objectives``)."""
        self._behaviours: np.ndarray | None = None
        self._scores: np.ndarray | None = None
        self.refiner = Refiner.of(config)
        """The weight search (``config.refine_samples``), or None."""
        self._adopt([Genome.initial(self._new_id(), num_inputs, num_outputs, config, self.rng, self.tracker)
                     for _ in range(config.population_size)])
        self.species: list[Species] = []
        self._speciate()

    @property
    def pop_size(self) -> int:
        return self.config.population_size

    @property
    def genomes(self) -> list[Genome]:
        """This generation's genomes in row order, views of ``batch`` (a new list each time; the ``Genome``
        objects are the generation's own)."""
        return list(self._views)

    @property
    def batch(self) -> GenomeBatch:
        """This generation's genes, one row per genome of ``genomes``."""
        return self._batch

    @property
    def fitness(self) -> np.ndarray:
        """This generation's fitness, one per row of ``batch`` (NaN: none yet); read-only."""
        values = self._state.fitness.view()
        values.flags.writeable = False
        return values

    @property
    def behaviours(self) -> np.ndarray | None:
        """The told generation's behaviours, one row per row of ``batch`` (None: none declared, or not told);
        a genome whose evaluation failed (``Genome.failed``) has a row of NaN."""
        return self._behaviours

    @property
    def scores(self) -> np.ndarray:
        """What breeding selects on, one per row of ``batch``: the fitness itself unless ``config.selection``
        says otherwise (novelty, a Pareto score, a blend; see ``neatify.objectives.selection``)."""
        return self._state.fitness if self._scores is None else self._scores

    def _hold(self, batch: GenomeBatch) -> None:
        """Make ``batch`` the generation: its views share one fitness array, none set yet."""
        self._batch = batch
        self._state = RowState(len(batch))
        self._views = tuple(batch.views(self._state))

    def _adopt(self, genomes: list[Genome]) -> None:
        """Make ``genomes`` (built here or loaded, their genes their own objects) the generation: their genes
        copied into ``batch`` for breeding, their fitness into the array. They keep their gene objects, in
        their order, so a fitness function iterating them sees what it always saw."""
        self._hold(GenomeBatch.from_genomes(genomes))
        for row, genome in enumerate(genomes):
            genome.join(self._state, row)
        self._views = tuple(genomes)

    def _new_id(self) -> int:
        genome_id = self.next_genome_id
        self.next_genome_id += 1
        return genome_id

    def _speciate(self) -> None:
        self.species, self.next_species_id, threshold = speciate_steered(
            list(self._views), self.species, self.compatibility_threshold, self.config, self.generation,
            self.next_species_id, self._batch)
        self.compatibility_threshold = adapt_threshold(threshold, len(self.species), self.config)

    def _member_rows(self) -> list[np.ndarray]:
        """The rows of each species' members, in member order."""
        return [rows_of(s.members, self._state) for s in self.species]

    # --- state as plain data (see neatify.io.checkpoint) ---
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly, as JSON-safe plain data."""
        version, internal, gauss_next = self.rng.getstate()
        with paused():
            genomes = plain_genomes(self._views)
        return {
            "config": self.config.to_dict(),
            "num_inputs": self.num_inputs,
            "num_outputs": self.num_outputs,
            "seed": self.seed,
            "rng": [version, list(internal), gauss_next],
            "tracker": self.tracker.to_dict(),
            "generation": self.generation,
            "next_genome_id": self.next_genome_id,
            "next_species_id": self.next_species_id,
            "compatibility_threshold": self.compatibility_threshold,
            "evaluations": self.evaluations,
            "evaluated": self.evaluated,
            "genomes": genomes,
            "species": [s.to_dict() for s in self.species],
            "best_genome": None if self.best_genome is None else self.best_genome.to_dict(),
            "history": [dataclasses.asdict(h) for h in self.history],
            **self._beyond_fitness_state(),
            **({} if self.refiner is None else {"refine": self.refiner.to_dict()}),
            **self._context_state(),
        }

    def _context_state(self) -> dict[str, Any]:
        """The first reporter's ``generation_context()`` (a normalised gym task's observation statistics, learnt as
        a reporter), so that a resumed run has it back; absent without one (checkpoints stay as they were)."""
        context = next((c for r in self.reporters if (c := generation_context(r)) is not None), None)
        return {} if context is None else {"generation_context": context}

    def _restore_context(self, reporter: Reporter) -> None:
        """Tell a reporter that makes a generation context the one this resumed run saved (``set_generation``)."""
        if self._saved_context is not None and hasattr(inspect.unwrap(reporter), "generation_context"):
            tell_generation(reporter, self.generation, self._saved_context)

    def _beyond_fitness_state(self) -> dict[str, Any]:
        """The state of behaviours, selection scores and archives: none for a run of fitness alone (its
        checkpoints stay as they were)."""
        if not self.config.behaviour_size and self.config.selection == "fitness":
            return {}
        behaviours = None if self._behaviours is None else \
            [row if math.isfinite(row[0]) else None for row in self._behaviours.tolist()]  # None: failed
        return {"behaviours": behaviours,
                "scores": None if self._scores is None else self._scores.tolist(),
                "selection": self.selection.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace this population's state with one from ``state_dict()``. A generation saved between
        ``ask`` and ``tell`` is asked again (``ask`` returns the same genomes)."""
        self.config = EvolutionConfig.from_dict(state["config"])
        self.num_inputs = int(state["num_inputs"])
        self.num_outputs = int(state["num_outputs"])
        self.seed = state["seed"]
        self.rng = random.Random()
        version, internal, gauss_next = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss_next))
        self.tracker = InnovationTracker.from_dict(state["tracker"])
        self.generation = int(state["generation"])
        self.next_genome_id = int(state["next_genome_id"])
        self.next_species_id = int(state["next_species_id"])
        self.compatibility_threshold = float(state["compatibility_threshold"])
        self.evaluations = int(state["evaluations"])
        self.evaluated = bool(state["evaluated"])
        self._asked = False
        with paused():
            self._adopt([Genome.from_dict(g) for g in state["genomes"]])
        by_id = {g.id: g for g in self._views}
        self.species = [Species.from_dict(s, by_id) for s in state["species"]]
        self.best_genome = None if state["best_genome"] is None else Genome.from_dict(state["best_genome"])
        self.history = [GenerationStats(**h) for h in state["history"]]
        self._load_beyond_fitness(state)
        self.refiner = Refiner.of(self.config, state.get("refine"))
        if not hasattr(self, "reporters"):
            self.reporters = []
        self._saved_context = state.get("generation_context")
        for reporter in self.reporters:
            self._restore_context(reporter)

    def _load_beyond_fitness(self, state: dict[str, Any]) -> None:
        """Take what ``_beyond_fitness_state`` saved (nothing, for a run of fitness alone)."""
        self.selection = Selection(self.config)
        behaviours, scores = state.get("behaviours"), state.get("scores")
        self._scores = None if scores is None else np.array(scores, dtype=np.float64)
        self._behaviours = None
        if behaviours is not None:
            none = [math.nan] * self.config.behaviour_size
            self._behaviours = np.array([none if row is None else row for row in behaviours], dtype=np.float64)
            for row, behaviour in enumerate(behaviours):
                if behaviour is None:
                    self._state.failed.add(row)
                else:
                    self._state.behaviours[row] = behaviour
        if state.get("selection") is not None:
            self.selection.load(state["selection"])

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Population:
        population = cls.__new__(cls)
        population.load_state_dict(state)
        return population

    # --- the loop ---
    def ask(self) -> list[Genome]:
        """The generation to evaluate, its genomes in row order with no fitness yet: the first call the
        initial population, later calls the next generation, bred from the one last told. Asked again
        before ``tell``, the same generation (its fitness cleared again).

        The first call in a process freezes what already lives out of the cycle collector's way
        (``neatify.runtime.collector.freeze_once``; ``NEATIFY_GC_FREEZE=0`` opts out).
        """
        freeze_once()
        self._saved_context = None  # told to the reporters added since it was loaded; theirs is newer from now on
        if self.evaluated:
            self._breed()
        self._state.clear_fitness()
        self._asked = True
        for reporter in self.reporters:
            reporter.start_generation(self)
        return list(self._views)

    def tell(self, fitness: Sequence[Any] | np.ndarray, behaviours: Sequence[Any] | np.ndarray | None = None) -> None:
        """Give the generation ``ask`` returned its fitness: one finite number per genome, in the order
        asked (a sequence or an array); and, when the run declares ``behaviour_size``, its ``behaviours``
        (one vector per genome, in that order; a genome marked ``failed`` has none, its row is ignored). A wrong length raises ValueError, a bad value ``FitnessError``
        naming its genome; either way nothing is lost, the generation can be told (or asked) again."""
        if not self._asked:
            raise RuntimeError("tell() needs a generation from ask() first (each told generation is asked "
                               "once; a population loaded from a checkpoint asks again: ask() returns the same "
                               "genomes)")
        self._state.fitness[:] = self._told(fitness)
        self._state.other.clear()
        if behaviours is not None:
            if len(behaviours) != len(self._views):
                raise ValueError(f"tell() got {len(behaviours)} behaviours for the {len(self._views)} genomes asked")
            self._state.behaviours.update(enumerate(behaviours))
        self._conclude()

    def _told(self, fitness: Sequence[Any] | np.ndarray) -> np.ndarray:
        """``fitness`` checked as ``tell`` takes it: one finite float per genome asked."""
        if len(fitness) != len(self._views):
            raise ValueError(f"tell() got {len(fitness)} fitness values for the {len(self._views)} genomes asked "
                             "(one per genome, in the order asked)")
        if hasattr(fitness, "__array__"):  # numpy arrays, tensors
            values = np.asarray(fitness)
            numeric = values.ndim == 1 and values.dtype.kind in "iuf"
        else:  # a sequence: floats taken as they are (numpy would turn bools and numeric strings into floats)
            values = fitness
            numeric = all(type(value) is float for value in fitness)
        if not numeric:  # each value checked (ints pass; None, bools, strings, lists do not)
            values = [check_fitness(g.id, v) for g, v in zip(self._views, fitness)]
        values = np.array(values, dtype=np.float64)
        for row in np.flatnonzero(~np.isfinite(values)).tolist():
            check_fitness(self._views[row].id, values.item(row))
        return values

    def run_generation(self, fitness_fn: FitnessFunction) -> None:
        """One generation: ``ask``, ``fitness_fn(genomes)`` setting ``genome.fitness`` on each, ``tell``.

        On return ``genomes`` is the generation just evaluated, each with a finite fitness. If the
        fitness function raises or leaves a bad fitness, nothing is lost: the same generation is
        evaluated again on the next call. The fitness belongs to the ``Genome`` objects given (the
        generation's own): a fitness set on another object put in their place is not the generation's,
        and the genome it replaced has none (``FitnessError``). Genes the fitness function changed by hand
        (say, weights trained and written back) are taken into the generation, and offspring inherit them.
        """
        self.ask()
        self.evaluate(fitness_fn)
        self._conclude()

    def add_reporter(self, reporter: Reporter) -> None:
        """Add ``reporter``; one making a generation context gets a resumed run's saved one (``_restore_context``)."""
        self.reporters.append(reporter)
        self._restore_context(reporter)

    def evaluate(self, fitness_fn: FitnessFunction) -> None:
        """Set ``fitness`` on every genome, the fitness function told the generation first (``tell_generation``).
        Subclasses evaluate elsewhere (workers, processes)."""
        genomes = self.genomes
        tell_generation(fitness_fn, self.generation)
        try:
            fitness_fn(genomes)
        except TypeError as exc:
            hint = neat_python_hint(fitness_fn, genomes, exc)
            if hint is None:
                raise
            raise NeatPythonFitnessError(hint) from exc

    def run(self, fitness_fn: FitnessFunction, generations: int, fitness_threshold: float | None = None) -> Genome:
        """Run up to ``generations`` generations, stopping early once the best fitness reaches
        ``fitness_threshold``; returns the best genome ever seen."""
        for _ in range(generations):
            self.run_generation(fitness_fn)
            if fitness_threshold is not None and self.history[-1].best_fitness >= fitness_threshold:
                break
        assert self.best_genome is not None
        return self.best_genome

    def _conclude(self) -> None:
        """The asked generation has its fitness: check it, record it, tell the reporters."""
        self._settle()
        self._check_fitness()
        self._behaviours = self._checked_behaviours()
        self._scores = self._selection_scores()
        self._asked = False
        self.evaluated = True
        stats = self._record()
        for reporter in self.reporters:
            reporter.end_generation(self, stats)

    def _settle(self) -> None:
        """Take genes changed by hand (``RowState.changed``) into ``batch``, so breeding reads them."""
        changed = sorted(self._state.changed)
        if changed:
            self._batch = self._batch.replaced(np.array(changed), [self._views[row] for row in changed])

    def _check_fitness(self) -> None:
        """``FitnessError`` naming the first genome without a finite float fitness (checked in bulk first)."""
        for row in np.flatnonzero(~np.isfinite(self._state.fitness)).tolist():
            check_fitness(self._views[row].id, self._views[row].fitness)

    def _checked_behaviours(self) -> np.ndarray | None:
        """The generation's behaviours as one array, when the run declares them, a row of NaN for each genome
        whose evaluation ``failed``; ``FitnessError`` naming the first other genome without a right one
        (checked in bulk first)."""
        size, given, failed = self.config.behaviour_size, self._state.behaviours, self._state.failed
        if not size:
            return None
        none = [math.nan] * size
        try:
            values = np.array([none if row in failed else given.get(row) for row in range(len(self._views))])
        except (TypeError, ValueError, RuntimeError):  # ragged rows, tensors on a GPU: checked one by one below
            values = np.zeros(0)
        if values.shape == (len(self._views), size) and values.dtype.kind in "iuf" and \
                np.isfinite(np.delete(values, list(failed), axis=0)).all():
            return values.astype(np.float64)
        return np.array([none if row in failed else check_behaviour(g.id, given.get(row), size)
                         for row, g in enumerate(self._views)], dtype=np.float64).reshape(len(self._views), size)

    def _selection_scores(self) -> np.ndarray | None:
        """What breeding selects on (None: the fitness itself, for a run of fitness alone); the novelty archive
        and the archive of elites take the generation in on the way."""
        selection = self.selection
        if self.config.selection == "fitness" and selection.archive is None and selection.elites is None:
            return None
        hidden, enabled = self._batch.sizes()
        views = self._views
        return selection.scores(self._state.fitness.copy(), self._behaviours, hidden + enabled, self._batch.ids,
                                lambda row: views[row].to_dict(), self.rng)

    def _record(self) -> GenerationStats:
        fitness, ids = self._state.fitness, self._batch.ids
        top = np.flatnonzero(fitness == fitness.max())
        row = int(top[np.argmin(ids[top])])  # the fittest, the lowest id on a tie
        best, best_fitness = self._views[row], fitness.item(row)
        if self.best_genome is None or best_fitness > self.best_genome.fitness:
            self.best_genome = best.copy(best.id)
            self.best_genome.fitness = best_fitness
        for s, rows in zip(self.species, self._member_rows()):
            s.update_fitness(self.generation, self.scores[rows].max().item())
        self.evaluations += len(fitness)
        hidden, enabled = self._batch.sizes()
        stats = GenerationStats(
            generation=self.generation,
            best_fitness=best_fitness,
            mean_fitness=sum(fitness.tolist()) / len(fitness),
            num_species=len(self.species),
            mean_hidden=int(hidden.sum()) / len(fitness),
            mean_connections=int(enabled.sum()) / len(fitness),
            evaluations=self.evaluations,
        )
        self.history.append(stats)
        logger.debug("generation %d: best %.4f mean %.4f species %d hidden %.2f connections %.2f",
                     stats.generation, stats.best_fitness, stats.mean_fitness, stats.num_species,
                     stats.mean_hidden, stats.mean_connections)
        return stats

    def staleness(self) -> int:
        """Generations since the population's best fitness last rose (0 in the generation it rose)."""
        best, improved = -math.inf, 0
        for stats in self.history:
            if stats.best_fitness > best:
                best, improved = stats.best_fitness, stats.generation
        return self.history[-1].generation - improved if self.history else 0

    def _breed(self) -> None:
        self._settle()
        self.tracker.new_generation()
        bred = self.pop_size - self.config.refine_samples
        batch, self.species = reproduce(self.species, self._member_rows(), self._batch, self.scores,
                                        self.config, bred, self.rng, self.tracker, self._new_id,
                                        self.staleness())
        if self.refiner is not None:
            batch = self.refiner.extend(batch, self._batch, self._state.fitness, self.rng, self._new_id)
        self._hold(batch)
        self._behaviours = self._scores = None
        self.generation += 1
        self.evaluated = False
        self._speciate()
