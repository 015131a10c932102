"""A NEAT genome: node and connection genes, either its own or a view of one row of a ``GenomeBatch``.

Its per-genome mutation, crossover and distance are the reference operators of ``reference``.

Node ids: inputs are ``0 .. num_inputs-1``, outputs follow, hidden nodes get ids from the
InnovationTracker. Connection genes are keyed by innovation number.

A view's genes are the batch's row: gene objects are built when first read, and reading them leaves the
view a view. A fitness function may still change them by hand (Lamarckian evolution: train the weights,
write them back): the changed view's genes are then its own objects (``batch_row`` says so) and its
population takes them into the generation's arrays when the generation is told, so offspring inherit
them. A view's ``fitness`` is its row's entry in the fitness array its batch's views share (``RowState``).
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from neatify.config import EvolutionConfig
from neatify.genome.genes import ConnectionGene, NodeGene
from neatify.genome.graph import evaluation_plan
from neatify.genome.innovation import InnovationTracker
from neatify.genome.reference import ReferenceOperators, new_value, new_weight

if TYPE_CHECKING:
    from neatify.genome.batch import GenomeBatch
    from neatify.genome.rows import RowState


def _initial_pairs(mode: str, inputs: list[int], outputs: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """The (input, output) connections of a new genome: ``full`` all of them, ``partial P`` a random
    fraction P of them, ``fs_neat`` one random input to every output (FS-NEAT), ``none`` none."""
    name, _, fraction = mode.partition(" ")
    pairs = [(inp, out) for out in outputs for inp in inputs]
    if name == "partial":
        return [pairs[i] for i in sorted(rng.sample(range(len(pairs)), round(float(fraction) * len(pairs))))]
    if name == "fs_neat":
        chosen = rng.choice(inputs)
        return [(chosen, out) for out in outputs]
    return pairs if name == "full" else []


class Genome(ReferenceOperators):
    """One individual: its genes, its unique ``id`` within a run, and its ``fitness`` once evaluated."""

    __slots__ = ("id", "num_inputs", "num_outputs", "_nodes", "_connections", "_fitness", "_batch", "_row",
                 "_state", "_behaviour", "_failed")

    def __init__(self, genome_id: int, num_inputs: int, num_outputs: int) -> None:
        self.id = genome_id
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self._nodes: dict[int, NodeGene] | None = {}
        self._connections: dict[int, ConnectionGene] | None = {}
        self._fitness: Any = None
        self._behaviour: Any = None
        self._failed = False
        self._batch: GenomeBatch | None = None
        self._row = -1
        self._state: RowState | None = None

    @classmethod
    def view(cls, batch: GenomeBatch, row: int, genome_id: int, state: RowState) -> Genome:
        """Genome ``genome_id`` whose genes are row ``row`` of ``batch`` (gene objects built when first
        read) and whose fitness is that row's in ``state``."""
        genome = cls.__new__(cls)
        genome.id, genome.num_inputs, genome.num_outputs = genome_id, batch.num_inputs, batch.num_outputs
        genome._nodes = genome._connections = genome._behaviour = None
        genome._failed = False
        genome._batch, genome._row, genome._state = batch, row, state
        return genome

    def join(self, state: RowState, row: int) -> None:
        """Make this genome (its genes its own objects) row ``row`` of a generation, its fitness moved to
        that row's in ``state``. Its gene objects stay its genes, in their order, now telling it of a change,
        which the generation then takes in as it does a view's (``RowState.changed``)."""
        fitness, behaviour, failed = self.fitness, self.behaviour, self.failed
        self._row, self._state = row, state
        self._watch_genes(self.nodes, self.connections)
        self.fitness, self.behaviour, self.failed = fitness, behaviour, failed

    def batch_row(self) -> tuple[GenomeBatch | None, int]:
        """(batch, row) holding this genome's genes: a view's, unless they were changed by hand; (None, -1)
        when its gene objects are its genes."""
        return (self._batch, self._row) if self._batch is not None else (None, -1)

    @property
    def fitness(self) -> Any:
        """Higher is better; None until evaluated. A view's is its row's entry in its generation's fitness
        array (a real number reads back as a float)."""
        state = self._state
        if state is None:
            return self._fitness
        value = state.values[self._row]
        return value if value == value else state.other.get(self._row)

    @fitness.setter
    def fitness(self, value: Any) -> None:
        state = self._state
        if state is None:
            self._fitness = value
        elif type(value) is float and value == value:
            state.values[self._row] = value
        elif value is None:  # every evaluation clears each genome's fitness first: kept off set_other's slow checks
            state.clear(self._row)
        else:
            state.set_other(self._row, value)

    @property
    def behaviour(self) -> Any:
        """What the genome did, as a fixed-length vector of floats the fitness function may set beside its
        fitness (a run declares the length: ``behaviour_size``); None until set. Novelty search and the
        archive of elites read it. A view's is kept by its generation (``RowState.behaviours``)."""
        state = self._state
        return self._behaviour if state is None else state.behaviours.get(self._row)

    @behaviour.setter
    def behaviour(self, value: Any) -> None:
        state = self._state
        if state is None:
            self._behaviour = value
        elif value is None:
            state.behaviours.pop(self._row, None)
        else:
            state.behaviours[self._row] = value

    @property
    def failed(self) -> bool:
        """Whether its evaluation failed and it was given an error fitness instead (a backend's or an evaluator's
        ``error_fitness``): it then has no behaviour, and novelty search leaves it out (``neatify.objectives``)."""
        state = self._state
        return self._failed if state is None else self._row in state.failed

    @failed.setter
    def failed(self, value: bool) -> None:
        state = self._state
        if state is None:
            self._failed = bool(value)
        elif value:
            state.failed.add(self._row)
        else:
            state.failed.discard(self._row)

    def _read_genes(self) -> None:
        assert self._batch is not None
        self._watch_genes(*self._batch.genes(self._row))

    def _watch_genes(self, nodes: dict[int, NodeGene], connections: dict[int, ConnectionGene]) -> None:
        """Hold ``nodes`` and ``connections`` (plain genes of this genome alone) as genes that tell it when
        they are changed (``_genes_changed``)."""
        self._nodes = _watched(nodes, self, _ViewNodeGene)
        self._connections = _watched(connections, self, _ViewConnectionGene)

    def _genes_changed(self) -> None:
        """A view's genes were changed by hand: its gene objects are its genes from now on, and its
        generation takes them in (``RowState.changed``)."""
        self._batch = None
        self._state.changed.add(self._row)  # type: ignore[union-attr]  # only a generation's genomes are told

    @property
    def nodes(self) -> dict[int, NodeGene]:
        """Node genes (outputs and hidden) by node id."""
        if self._nodes is None:
            self._read_genes()
        return self._nodes  # type: ignore[return-value]

    @nodes.setter
    def nodes(self, value: dict[int, NodeGene]) -> None:
        if self._nodes is None:
            self._read_genes()
        self._nodes = value
        if self._state is not None:
            self._genes_changed()

    @property
    def connections(self) -> dict[int, ConnectionGene]:
        """Connection genes by innovation number."""
        if self._connections is None:
            self._read_genes()
        return self._connections  # type: ignore[return-value]

    @connections.setter
    def connections(self, value: dict[int, ConnectionGene]) -> None:
        if self._connections is None:
            self._read_genes()
        self._connections = value
        if self._state is not None:
            self._genes_changed()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (and deep-copied) as its plain data, never with the batch a view reads from."""
        return Genome.from_dict, (self.to_dict(),)

    def __repr__(self) -> str:
        hidden, enabled = self.size()
        return f"Genome(id={self.id}, hidden={hidden}, connections={enabled}, fitness={self.fitness})"

    # --- structure queries ---
    @property
    def input_ids(self) -> list[int]:
        return list(range(self.num_inputs))

    @property
    def output_ids(self) -> list[int]:
        return list(range(self.num_inputs, self.num_inputs + self.num_outputs))

    def size(self) -> tuple[int, int]:
        """(hidden nodes, enabled connections): the complexity figure reporters print."""
        hidden = sum(1 for n in self.nodes.values() if n.kind == "hidden")
        return hidden, sum(1 for c in self.connections.values() if c.enabled)

    def enabled_edges(self) -> list[tuple[int, int]]:
        return [(c.in_node, c.out_node) for c in self.connections.values() if c.enabled]

    def is_recurrent(self) -> bool:
        """Whether the enabled connections that matter for the outputs contain a cycle."""
        return evaluation_plan(self.enabled_edges(), self.input_ids, self.output_ids).is_recurrent

    # --- construction ---
    @classmethod
    def initial(cls, genome_id: int, num_inputs: int, num_outputs: int, config: EvolutionConfig,
                rng: random.Random, tracker: InnovationTracker) -> Genome:
        """A minimal genome: outputs only, connected to the inputs as ``config.initial_connection`` says."""
        genome = cls(genome_id, num_inputs, num_outputs)
        for out in genome.output_ids:
            genome.nodes[out] = NodeGene(out, "output", new_value(rng, config.bias_init_stdev,
                                                                   config.bias_min_value, config.bias_max_value),
                                         config.activation_default)
        for inp, out in _initial_pairs(config.initial_connection, genome.input_ids, genome.output_ids, rng):
            genome._add_connection(tracker.connection(inp, out), inp, out, new_weight(rng, config))
        return genome

    def copy(self, genome_id: int) -> Genome:
        """A genome with equal genes of its own (a view's genes are read for it, the view stays one)."""
        clone = Genome(genome_id, self.num_inputs, self.num_outputs)
        if self._batch is not None:
            clone._nodes, clone._connections = self._batch.genes(self._row)
            return clone
        clone.nodes = {k: NodeGene(n.id, n.kind, n.bias, n.activation) for k, n in self.nodes.items()}
        clone.connections = {k: ConnectionGene(c.innovation, c.in_node, c.out_node, c.weight, c.enabled)
                             for k, c in self.connections.items()}
        return clone

    # --- plain data ---
    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON- and msgpack-safe); ``from_dict`` restores it exactly. A view
        stays a view (its genes are read for this, not kept)."""
        nodes, connections = (self.nodes, self.connections) if self._batch is None else self._batch.genes(self._row)
        return {
            "id": self.id,
            "num_inputs": self.num_inputs,
            "num_outputs": self.num_outputs,
            "nodes": [n.to_list() for n in nodes.values()],
            "connections": [c.to_list() for c in connections.values()],
            "fitness": self.fitness,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genome:
        genome = cls(int(data["id"]), int(data["num_inputs"]), int(data["num_outputs"]))
        for item in data["nodes"]:
            node = NodeGene.from_list(item)
            genome.nodes[node.id] = node
        for item in data["connections"]:
            conn = ConnectionGene.from_list(item)
            genome.connections[conn.innovation] = conn
        fitness = data.get("fitness")
        genome.fitness = None if fitness is None else float(fitness)
        return genome


def _tell(watch: Callable[[], Genome | None]) -> None:
    """Tell the view behind ``watch`` (a weak reference) that its genes were changed."""
    view = watch()
    if view is not None:
        view._genes_changed()


class _ViewGene:
    """What a view's gene adds to a plain one: a change tells the view. It equals, prints and copies as
    the plain gene it holds (a copy is a plain gene)."""

    __slots__ = ()
    _plain: type
    _watch: Callable[[], Genome | None]

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        _tell(self._watch)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self._plain):
            return NotImplemented
        return self.to_list() == other.to_list()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._plain(*self.to_list()))  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple[Any, ...]:
        return self._plain, tuple(self.to_list())  # type: ignore[attr-defined]


class _ViewNodeGene(_ViewGene, NodeGene):
    __slots__ = ()
    _plain = NodeGene


class _ViewConnectionGene(_ViewGene, ConnectionGene):
    __slots__ = ()
    _plain = ConnectionGene


def _telling(method: Callable[..., Any]) -> Callable[..., Any]:
    """``dict``'s ``method``, then the view told of a change."""
    def changing(self: _ViewGenes, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        _tell(self._watch)
        return result

    changing.__name__ = method.__name__
    return changing


class _ViewGenes(dict):
    """A view's node or connection genes by key: adding, replacing or removing one tells the view. Copies
    are plain dictionaries."""

    __slots__ = ("_watch",)
    __setitem__ = _telling(dict.__setitem__)
    __delitem__ = _telling(dict.__delitem__)
    __ior__ = _telling(dict.__ior__)
    clear = _telling(dict.clear)
    pop = _telling(dict.pop)
    popitem = _telling(dict.popitem)
    setdefault = _telling(dict.setdefault)
    update = _telling(dict.update)

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self),)


_set_gene_watch, _set_genes_watch = NodeGene._watch.__set__, _ViewGenes._watch.__set__  # type: ignore[attr-defined]
"""The ``_watch`` slots, set without the telling ``__setattr__`` of a view's gene."""


def _watched(genes: dict[int, Any], view: Genome, gene_type: type) -> _ViewGenes:
    """``genes`` (fresh plain genes by key) made ``view``'s: each turned into a ``gene_type`` that tells
    ``view`` of a change. A weak reference: the genes keep no view alive, and make no reference cycle."""
    watch = weakref.ref(view)
    for gene in genes.values():
        gene.__class__ = gene_type  # the same slots: only the class changes
        _set_gene_watch(gene, watch)
    watched = _ViewGenes(genes)
    _set_genes_watch(watched, watch)
    return watched
