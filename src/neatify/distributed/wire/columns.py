"""The genome columns of TASK_ASSIGNMENT: a task is a batch of ``neatify.io.columns`` with its batch id and
generation, and a worker decodes it with the same check as a pool process or a Ray actor."""

from __future__ import annotations

from typing import Any

import numpy as np

from neatify.distributed.errors import ProtocolError
from neatify.distributed.wire.messages import TaskAssignment
from neatify.genome.batch import GenomeBatch
from neatify.genome.genome import Genome
from neatify.io.columns import (
    CONNECTION_RECORD, GENE_COUNT, NODE_RECORD, ColumnEncoder, ColumnsError, GenomeColumns, decode_columns,
)

__all__ = ["CONNECTION_RECORD", "GENE_COUNT", "NODE_RECORD", "WireGenomes", "decode_genome_batch", "decode_genomes"]


class WireGenomes(ColumnEncoder):
    """A generation's genomes in their wire form, built once: every task's columns are cut from it."""

    def task(self, batch_id: int, generation: int, rows: np.ndarray | None = None,
             context: dict[str, Any] | None = None) -> TaskAssignment:
        """The TASK_ASSIGNMENT of ``rows`` (default: every row), in their order (``ColumnEncoder.columns``), with the
        generation's ``context`` (None: none)."""
        c = self.columns(rows)
        return TaskAssignment(batch_id, generation, c.num_inputs, c.num_outputs, c.activation_names, c.ids,
                              c.node_counts, c.conn_counts, c.nodes, c.connections, context)


def decode_genomes(task: TaskAssignment) -> list[Genome]:
    """The genomes of a TASK_ASSIGNMENT as views of one checked ``GenomeBatch`` (``decode_genome_batch``); their
    gene objects are built only when read."""
    return decode_genome_batch(task).views()


def decode_genome_batch(task: TaskAssignment) -> GenomeBatch:
    """The genes of a TASK_ASSIGNMENT as one ``GenomeBatch``, all checked first.

    Raises ProtocolError naming the bad column, or the first bad genome and its problem.
    """
    columns = GenomeColumns(task.num_inputs, task.num_outputs, task.activation_names, task.ids, task.node_counts,
                            task.conn_counts, task.nodes, task.connections)
    try:
        return decode_columns(columns)
    except ColumnsError as exc:
        raise ProtocolError(f"TASK_ASSIGNMENT with {exc}") from None
