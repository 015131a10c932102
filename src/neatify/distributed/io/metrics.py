"""A master's Prometheus metrics (``/metrics``), read when scraped: nothing is counted for them in between beyond
the coordinator's byte and re-send counters, so a run is no slower with them on.

Each master has a ``CollectorRegistry`` of its own (not prometheus_client's global one), so one process may hold
many masters. The collector reads the master's core, so it runs in the master's event loop thread (the HTTP
server's).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from neatify.distributed.io.http import Response, Route
from neatify.runtime.extras import require

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from neatify.distributed.io.master import SystemCoordinator
    from neatify.distributed.io.watch import RunWatch

METRICS = {
    "neatify_generation": ("gauge", "Generation being evaluated, or the last one (-1: none yet)."),
    "neatify_best_fitness": ("gauge", "Best fitness of the last generation evaluated."),
    "neatify_mean_fitness": ("gauge", "Mean fitness of the last generation evaluated."),
    "neatify_species": ("gauge", "Species in the last generation evaluated."),
    "neatify_genomes_evaluated_total": ("counter", "Genomes evaluated in the run so far."),
    "neatify_workers": ("gauge", "Workers registered."),
    "neatify_workers_busy": ("gauge", "Workers evaluating a batch."),
    "neatify_genomes_per_second": ("gauge", "Genomes per second of the last generation evaluated."),
    "neatify_batches_resent_total": ("counter", "Batches re-sent because their worker was lost or late "
                                                "(generations finished under this master)."),
    "neatify_received_bytes_total": ("counter", "Bytes received from workers and other peers."),
    "neatify_sent_bytes_total": ("counter", "Bytes sent to workers and other peers."),
    "neatify_uptime_seconds": ("gauge", "Seconds since the master started."),
    "neatify_worker_genomes_per_second": ("gauge", "A worker's evaluation rate: genomes per second over its "
                                                   "batches' turnaround."),
    "neatify_worker_batches_total": ("counter", "Batches a worker reported."),
    "neatify_worker_batches_resent_total": ("counter", "Batches re-sent to others because a worker held them past "
                                                       "task_timeout."),
}
"""Name -> (type, help) of every metric (docs/distributed.md, "Watching a run", has the same table)."""
WORKER_LABEL = "worker"


class MasterCollector:
    """The metrics of one master: its core's state, the coordinator's counters, the watch's last generation."""

    def __init__(self, coordinator: SystemCoordinator, watch: RunWatch) -> None:
        self.coordinator = coordinator
        self.watch = watch

    def collect(self) -> Iterator[Metric]:
        """Every metric of ``METRICS`` (the fitness ones once a generation was evaluated)."""
        protocol = self.coordinator.protocol
        status = protocol.status(time.monotonic())
        values: dict[str, float] = {
            "neatify_generation": status.generation, "neatify_workers": status.workers,
            "neatify_workers_busy": status.busy, "neatify_genomes_per_second": status.genomes_per_s,
            "neatify_batches_resent_total": self.coordinator.batches_resent,
            "neatify_received_bytes_total": self.coordinator.bytes_in,
            "neatify_sent_bytes_total": self.coordinator.bytes_out, "neatify_uptime_seconds": status.uptime,
        }
        last = self.watch.last()
        if last is not None:
            values.update({"neatify_best_fitness": last["best"], "neatify_mean_fitness": last["mean"],
                           "neatify_species": len(last["species"]),
                           "neatify_genomes_evaluated_total": last["evaluations"]})
        for name, value in values.items():
            family = _family(name)
            family.add_metric([], value)
            yield family
        workers = list(protocol.workers.values())
        for name, read in (("neatify_worker_genomes_per_second", lambda w: w.speed or 0.0),
                           ("neatify_worker_batches_total", lambda w: w.batches_done),
                           ("neatify_worker_batches_resent_total", lambda w: w.resent)):
            family = _family(name, [WORKER_LABEL])
            for worker in workers:
                family.add_metric([worker.worker_id], read(worker))
            yield family


def _family(name: str, labels: list[str] | None = None) -> Metric:
    """An empty metric family of ``METRICS[name]`` (a counter's family is named without its ``_total``)."""
    core = require("prometheus_client.metrics_core", "neatify master --metrics", "metrics")
    kind, text = METRICS[name]
    if kind == "counter":
        return core.CounterMetricFamily(name.removesuffix("_total"), text, labels=labels)
    return core.GaugeMetricFamily(name, text, labels=labels)


def metrics_route(coordinator: SystemCoordinator, watch: RunWatch) -> Route:
    """The ``/metrics`` page of this master: its own registry, rendered as Prometheus text when scraped."""
    client = require("prometheus_client", "neatify master --metrics", "metrics")
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(MasterCollector(coordinator, watch))
    return lambda query: Response(200, client.generate_latest(registry), client.CONTENT_TYPE_LATEST)
