"""The ``neatify`` command: ``run`` evolves locally, ``master``/``worker`` evolve over TCP, ``status`` asks a
master how it is doing, ``show`` summarises.

See docs/cli.md for the run file's schema. Expected failures (bad arguments, config or files)
end with a one-line ``neatify: error: ...`` on stderr and exit status 2 (usage) or 1 (the rest).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from neatify import __version__
from neatify.io.checkpoint import Checkpoint, CheckpointError
from neatify.config import ConfigError, EvolutionConfig
from neatify.config.errors import with_suggestion
from neatify.genome.genome import Genome
from neatify.population import FitnessError, NeatPythonFitnessError, Population, neat_python_hint
from neatify.reporting.reporters import Reporter, StatisticsReporter

if TYPE_CHECKING:
    from neatify.distributed import WorkerNode

logger = logging.getLogger("neatify.cli.main")


_STUCK_GRACE = 5.0
"""Seconds a worker process shut down by its master waits for its fitness function before it exits anyway."""
_LONGEST_WAIT = 7 * 24 * 3600.0
"""Seconds: the longest timeout the flags accept (a week)."""


class CLIError(Exception):
    """An expected failure, reported as one line without a traceback."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; the command exits with status 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalStop(Reporter):
    """Turns SIGINT and SIGTERM into ``Interrupted`` where the population is whole: at once outside
    the evolution loop or while genomes are evaluated (only their fitness is lost), otherwise (while
    breeding or recording) at the end of the generation. Later signals are ignored while it unwinds."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.in_loop = False
        self.evaluating = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM for the duration of the block."""
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if self.evaluating or not self.in_loop:
            raise Interrupted(signum)

    def evaluating_with(self, fitness_fn: Callable[..., Any]) -> Callable[[list[Genome]], Any]:
        """``fitness_fn``, marked as a place where a signal may stop the run at once (with its signature,
        which the hint for a fitness function written for neat-python reads)."""

        @functools.wraps(fitness_fn)
        def evaluate(genomes: list[Genome]) -> Any:
            self.evaluating = True
            try:
                return fitness_fn(genomes)
            finally:
                self.evaluating = False

        return evaluate

    @contextmanager
    def loop(self) -> Iterator[None]:
        """The evolution loop: outside ``evaluating_with``, signals wait for the generation's end."""
        self.in_loop = True
        try:
            yield
        finally:
            self.in_loop = False
        self.end_generation()

    def end_generation(self, population: Population | None = None, stats: Any = None) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default in ``--help`` unless it has none or its help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and whose help shows defaults."""

    def __init__(self, *args: Any, formatter_class: type[argparse.HelpFormatter] = _HelpFormatter,
                 **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def load_callable(spec: str, search: Sequence[str | Path] = ()) -> Callable[..., Any]:
    """Import ``module:function`` (also searching the current directory and ``search``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CLIError(f"expected module:function, got {spec!r}")
    for folder in (*search, os.getcwd()):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CLIError(f"cannot import {module_name!r} (from {spec!r}): {exc}") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            public = [name for name in dir(target) if not name.startswith("_")]
            raise CLIError(f"module {module_name!r} has no attribute {with_suggestion(part, public)}")
        target = getattr(target, part)
    if not callable(target):
        raise CLIError(f"{spec!r} is not callable")
    return target


@dataclass
class RunConfig:
    """The ``[run]`` table of a run file."""

    num_inputs: int
    num_outputs: int
    fitness: str | None = None
    generations: int = 100
    fitness_threshold: float | None = None
    seed: int | None = None
    workers: int = 1
    checkpoint_dir: str | None = None
    checkpoint_every: int = 10
    statistics: str | None = None
    champion: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Validate the ``[run]`` table: required keys present, no unknown keys, right types."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise CLIError(f"[run]: unknown key(s): {', '.join(with_suggestion(k, list(known)) for k in unknown)}")
        missing = [n for n in ("num_inputs", "num_outputs") if n not in data]
        if missing:
            raise CLIError(f"[run]: missing required key(s): {', '.join(missing)}")
        for name, value in data.items():
            expected = {"int": int, "str": str, "float": float}[known[name].type.split(" |")[0]]
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
            if isinstance(value, bool) or not ok:
                raise CLIError(f"[run]: {name} must be {expected.__name__}, got {value!r}")
        run = cls(**data)
        for name in ("num_inputs", "num_outputs", "generations", "workers", "checkpoint_every"):
            if getattr(run, name) < 1:
                raise CLIError(f"[run]: {name} must be at least 1, got {getattr(run, name)}")
        return run


def read_run_tables(path: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """A run file's checked ``[run]`` table and its ``[evolution]`` table as plain data, not yet
    validated (the fitness module may register activations it names)."""
    from neatify.config import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise CLIError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"run", "evolution", "task"})
    if unknown:
        raise CLIError(f"{path}: unknown table(s): {', '.join(unknown)}; expected [run], [evolution] and [task]")
    if "run" not in data:
        raise CLIError(f"{path}: missing the [run] table")
    return RunConfig.from_dict(data["run"]), data.get("evolution", {})


def _run_tables(args: argparse.Namespace) -> tuple[RunConfig, dict[str, Any]]:
    run, evolution = read_run_tables(args.config)
    if args.generations is not None:
        run.generations = args.generations
    return run, evolution


def _command_run(args: argparse.Namespace) -> int:
    run, evolution = _run_tables(args)
    fitness_fn = _task_fitness(args.config, run)
    if fitness_fn is None and run.fitness is None:
        raise CLIError(f"{args.config}: [run] needs fitness = \"module:function\" (or a [task] table) for a local run")
    if fitness_fn is None:
        fitness_fn = load_callable(run.fitness, search=[Path(args.config).resolve().parent])
    config = EvolutionConfig.from_dict(evolution)  # after the import: it may register activations
    if args.resume:
        population = Checkpoint.load(args.resume)
    else:
        population = Population(num_inputs=run.num_inputs, num_outputs=run.num_outputs, config=config,
                                seed=run.seed)
    if callable(getattr(fitness_fn, "end_generation", None)):  # a [task] that learns (normalize): a reporter
        population.add_reporter(fitness_fn)
    from neatify.backends.processes import ParallelEvaluator

    stop = SignalStop()
    with stop.installed():
        evaluator = ParallelEvaluator(fitness_fn, run.workers) if run.workers > 1 else nullcontext(fitness_fn)
        with evaluator as evaluate:
            return _evolve(population, run, stop.evaluating_with(evaluate), args.quiet, stop)


def _task_fitness(path: str | Path, run: RunConfig) -> Callable[..., Any] | None:
    """The fitness function of the run file's ``[task]`` table (``neatify.cli.task``), None without one."""
    from neatify.cli.task import TaskError, run_file_fitness

    try:
        return run_file_fitness(path, run.fitness, run.seed, (run.num_inputs, run.num_outputs))
    except TaskError as exc:
        raise CLIError(str(exc)) from None


def _learning_task(path: str | Path, run: RunConfig) -> Callable[..., Any] | None:
    """The run file's ``[task]`` for the master when it learns from the generations (``normalize = true``): the
    master keeps its statistics and sends them to the workers; None otherwise (the master builds no task)."""
    from neatify.cli.task import read_task

    task = read_task(path)
    return _task_fitness(path, run) if task is not None and task.get("normalize") is True else None


def _worker_fitness(spec: str) -> Callable[..., Any]:
    """``neatify worker``'s fitness: ``module:function``, or a run file's ``[task]``."""
    if not spec.endswith(".toml"):
        return load_callable(spec)
    run, _ = read_run_tables(spec)
    fitness_fn = _task_fitness(spec, run)
    if fitness_fn is None:
        raise CLIError(f"{spec}: a worker given a run file needs its [task] table")
    return fitness_fn


def _evolve(population: Population, run: RunConfig, fitness_fn: Callable[..., Any], quiet: bool,
            stop: SignalStop | None = None, statistics: StatisticsReporter | None = None) -> int:
    """Run the remaining generations with the run file's reporters; save and print the champion.
    Stopped by ``stop``'s signal, it first saves a checkpoint when the run file asks for them.
    ``statistics`` may hold the rows of earlier generations (a promoted standby's)."""
    from neatify.reporting.reporters import CheckpointReporter, ProgressReporter

    if not quiet:
        population.add_reporter(ProgressReporter())
    statistics = statistics if statistics is not None else StatisticsReporter()
    population.add_reporter(statistics)
    checkpoints = None
    if run.checkpoint_dir is not None:
        checkpoints = CheckpointReporter(run.checkpoint_dir, every_generations=run.checkpoint_every)
        population.add_reporter(checkpoints)
    remaining = run.generations - len(population.history)
    if remaining > 0:
        if stop is not None:
            population.add_reporter(stop)
        try:
            with stop.loop() if stop is not None else nullcontext():
                population.run(fitness_fn, remaining, run.fitness_threshold)
            if checkpoints is not None:  # the last generation, between two checkpoint_every
                checkpoints.finish(population)
        except Interrupted:
            if checkpoints is not None:
                print(f"neatify: saved {checkpoints.save(population)}", file=sys.stderr)
            raise
    if run.statistics is not None:
        save = statistics.save_json if run.statistics.endswith(".json") else statistics.save_csv
        save(run.statistics)
    champion = population.best_genome
    if champion is None:
        raise CLIError("no generation was evaluated (generations already reached?)")
    if run.champion is not None:
        Checkpoint.export_genome_json(champion, run.champion)
    hidden, connections = champion.size()
    print(f"champion: genome {champion.id} fitness {champion.fitness:.6g} "
          f"({hidden} hidden, {connections} connections) after {len(population.history)} generations")
    return 0


def _master_evolution(args: argparse.Namespace) -> tuple[RunConfig, EvolutionConfig]:
    """The master's run file: as ``run`` reads it, except that the fitness module (workers run it) is imported
    only when ``[evolution]`` names something unknown without it, such as an activation it registers."""
    run, evolution = _run_tables(args)
    try:
        return run, EvolutionConfig.from_dict(evolution)
    except ConfigError as unknown:
        if run.fitness is None:
            raise
        try:
            load_callable(run.fitness, search=[Path(args.config).resolve().parent])
        except CLIError as exc:
            raise CLIError(f"{unknown} (importing [run] fitness {run.fitness!r}, which might register it, "
                           f"failed: {exc})") from None
    return run, EvolutionConfig.from_dict(evolution)


def _frame_limit(args: argparse.Namespace) -> dict[str, int]:
    """``max_frame_bytes`` as keyword arguments, when ``--max-frame-bytes`` was given (else the default holds)."""
    return {} if args.max_frame_bytes is None else {"max_frame_bytes": args.max_frame_bytes}


def _command_master(args: argparse.Namespace) -> int:
    from neatify.distributed import DistributedConfig, DistributedError, DistributedPopulation

    run, config = _master_evolution(args)
    try:
        network = DistributedConfig(host=args.host, port=args.port, min_workers=args.min_workers,
                                    auth_token=args.auth_token, worker_wait_timeout=args.worker_wait_timeout,
                                    tls_cert=args.tls_cert, tls_key=args.tls_key, scheduler_file=args.scheduler_file,
                                    standby_of=args.standby_of, tls_ca=args.tls_ca,
                                    heartbeat_interval=args.heartbeat_interval, task_timeout=args.task_timeout,
                                    error_fitness=args.error_fitness, max_genome_attempts=args.max_genome_attempts,
                                    **_frame_limit(args))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    try:  # SIGTERM, as SIGINT, ends the run cleanly: workers and standby told, scheduler file removed
        with SignalStop().installed(), \
                DistributedPopulation(num_inputs=run.num_inputs, num_outputs=run.num_outputs, config=config,
                                      seed=run.seed, distributed_config=network,
                                      checkpoint_path=args.checkpoint) as population:
            role = "master" if args.standby_of is None else f"standby of {args.standby_of}"
            print(f"{role} listening on {args.host}:{population.port}", flush=True)
            if args.standby_of is not None and not population.follow():
                print("standby: the primary ended the run; not taking over", flush=True)
                return 0
            learning = _learning_task(args.config, run)
            if learning is not None:  # its statistics go to the workers with every task
                population.add_reporter(learning)
            with _watched(population, args):
                return _evolve(population, run, learning or (lambda genomes: None), args.quiet,  # workers compute
                               statistics=StatisticsReporter(population.replicated_statistics))  # fitness
    except (DistributedError, ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None


def _watched(population: Any, args: argparse.Namespace) -> Any:
    """The master's --metrics and --dashboard servers (a context ending them), each printing its address."""
    if args.metrics is None and args.dashboard is None:
        return nullcontext()
    from neatify.distributed.io.dashboard import RunServers

    try:
        servers = RunServers(population, population.coordinator, args.metrics, args.dashboard,
                             population.distributed_config.auth_token, args.http_connections)
    except ImportError as exc:  # --metrics without prometheus-client
        raise CLIError(str(exc)) from None
    for name, address, server in (("metrics", args.metrics, servers.metrics),
                                  ("dashboard", args.dashboard, servers.dashboard)):
        if address is not None and server is not None:
            print(f"{name} on http://{address[0]}:{server.port}/", flush=True)
    return servers


def _command_dashboard(args: argparse.Namespace) -> int:
    from neatify.distributed.config import AUTH_TOKEN_ENV
    from neatify.distributed.io.dashboard import serve_dashboard

    host = args.address[0]
    token = args.auth_token or os.environ.get(AUTH_TOKEN_ENV) or None
    try:
        serve_dashboard(args.source, args.address, token,
                        lambda port: print(f"dashboard on http://{host}:{port}/", flush=True), args.tls_ca,
                        args.http_connections)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return 0


def _http_connections_option(parser: argparse.ArgumentParser) -> None:
    """--http-connections: how many connections the metrics/dashboard server takes at once."""
    from neatify.distributed.io.http import MAX_CONNECTIONS

    parser.add_argument("--http-connections", type=_at_least(1), default=MAX_CONNECTIONS, metavar="N",
                        help=f"serve the metrics/dashboard to at most N connections at once; more are answered "
                             f"503 at once (default {MAX_CONNECTIONS})")


def _listen_address(text: str) -> tuple[str, int]:
    """An argparse ``type``: where to serve HTTP, ``HOST:PORT`` or ``PORT`` (127.0.0.1)."""
    from neatify.distributed.io.http import listen_address

    try:
        return listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _command_worker(args: argparse.Namespace) -> int:
    from neatify.distributed import DistributedError, WorkerNode

    fitness_fn = _worker_fitness(args.fitness)
    hint = None if args.setup is not None else neat_python_hint(fitness_fn, [], TypeError())
    if hint is not None:  # before connecting: the master would only see each genome fail
        raise NeatPythonFitnessError(hint)
    if args.processes is not None and not args.supervised_child:
        return _supervise_workers(args)
    host, port, masters = _master_addresses(args)
    setup = None if args.setup is None else load_callable(args.setup)
    try:
        worker = WorkerNode(host, port, worker_id=args.worker_id, fitness_function=fitness_fn,
                            capacity=args.capacity, auth_token=args.auth_token,
                            max_connect_attempts=args.max_connect_attempts, tls_ca=args.tls_ca,
                            tls_server_name=args.tls_server_name, setup=setup,
                            scheduler_file=args.scheduler_file, masters=masters, processes=args.processes or 1,
                            **_frame_limit(args))
        threading.Thread(target=_exit_when_stuck, args=(worker,), name="neatify-worker-watchdog", daemon=True).start()
        worker.start()
    except (DistributedError, ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None
    print(f"worker {worker.worker_id}: evaluated {worker.batches_done} batch(es); master shut down", flush=True)
    return 0


def _exit_when_stuck(worker: WorkerNode) -> None:
    """A worker process's watchdog: once its master has shut it down, the batch in hand gets
    ``_STUCK_GRACE`` seconds; a fitness function still running then (one that hangs) does not keep the
    process, nor a supervisor waiting for it, alive: it exits 0, as the master told it to."""
    worker.shut_down.wait()
    time.sleep(_STUCK_GRACE)
    logger.error("worker %s: the master shut down %.0fs ago and the fitness function has not returned; exiting",
                 worker.worker_id, _STUCK_GRACE)
    if worker.pool is not None:
        worker.pool.kill()
    logging.shutdown()
    os._exit(0)


def _master_addresses(args: argparse.Namespace) -> tuple[str | None, int | None, list[tuple[str, int]] | None]:
    """The worker's --master-host/--master-port (127.0.0.1:5000 by default), or its --master list, or neither
    with --scheduler-file."""
    host_port = args.master_host is not None or args.master_port is not None
    if sum([host_port, args.master is not None, args.scheduler_file is not None]) > 1:
        raise CLIError("give --master-host/--master-port, --master or --scheduler-file: one of them")
    if args.master is not None or args.scheduler_file is not None:
        return None, None, args.master
    return args.master_host or "127.0.0.1", 5000 if args.master_port is None else args.master_port, None


def _supervise_workers(args: argparse.Namespace) -> int:
    """``--processes N``: run this very command as one child process, the worker (one connection, N evaluator
    processes of its own), and keep it running (``neatify.distributed.io.supervisor``)."""
    import socket

    from neatify.distributed.io.supervisor import Supervisor

    name = args.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    command = [sys.executable, "-m", "neatify", *args.argv]  # options given twice: the last one counts
    return Supervisor({name: [*command, "--worker-id", name, "--supervised-child"]}).run()


def _address(text: str) -> tuple[str, int]:
    """An argparse ``type``: ``HOST:PORT`` (an IPv6 host in brackets)."""
    from neatify.distributed.config import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _addresses(text: str) -> list[tuple[str, int]]:
    """An argparse ``type``: ``HOST:PORT[,HOST:PORT...]``."""
    if "" in text.split(","):
        raise argparse.ArgumentTypeError(f"an empty address in {text!r}")
    return [_address(part) for part in text.split(",")]


def _standby_of(text: str) -> str:
    """An argparse ``type``: ``HOST:PORT``, checked and kept as text (``DistributedConfig.standby_of``)."""
    _address(text)
    return text


def _command_status(args: argparse.Namespace) -> int:
    import json

    from neatify.distributed import DistributedError
    from neatify.distributed.io.status import master_status

    host, port = args.address
    try:
        report = master_status(host, port, auth_token=args.auth_token, tls_ca=args.tls_ca,
                               tls_server_name=args.tls_server_name, timeout=args.timeout)
    except (DistributedError, OSError) as exc:
        raise CLIError(f"status of master at {host}:{port}: {exc}") from None
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    state = f"generation {report['generation']}" + (", evaluating" if report["evaluating"] else ", idle")
    print(f"master {host}:{port}: up {report['uptime']:.0f}s; {state}\n"
          f"workers: {report['workers']} ({report['busy']} busy, {report['idle']} idle)\n"
          f"genomes pending: {report['pending']}, quarantined in the run: {report.get('quarantined', 0)}\n"
          f"last generation: {report['genomes_per_s']:.1f} genomes/s")
    return 0


def _describe_genome(genome: Genome) -> list[str]:
    hidden, enabled = genome.size()
    fitness = "not evaluated" if genome.fitness is None else f"{genome.fitness:.6g}"
    return [f"genome {genome.id}: fitness {fitness}",
            f"  inputs {genome.num_inputs}, outputs {genome.num_outputs}, hidden {hidden}",
            f"  connections {enabled} enabled of {len(genome.connections)}, "
            f"{'recurrent' if genome.is_recurrent() else 'feed-forward'}"]


def _describe_population(population: Population, last: int) -> list[str]:
    lines = [f"generation {population.generation} ({'evaluated' if population.evaluated else 'not evaluated'}), "
             f"{len(population.genomes)} genomes, {len(population.species)} species, "
             f"{population.evaluations} evaluations, seed {population.seed}",
             f"inputs {population.num_inputs}, outputs {population.num_outputs}"]
    if population.best_genome is not None:
        lines += ["best ever:", *("  " + line for line in _describe_genome(population.best_genome))]
    lines.append("species:")
    lines += _table(["id", "size", "best fitness", "staleness"],
                    [[s.id, len(s.members), "-" if s.best_fitness == float("-inf") else f"{s.best_fitness:.6g}",
                      s.staleness] for s in population.species])
    shown = population.history[len(population.history) - min(last, len(population.history)):]
    if shown:
        lines.append(f"history (last {len(shown)}):")
        lines += _table(["generation", "best", "mean", "species"],
                        [[h.generation, f"{h.best_fitness:.6g}", f"{h.mean_fitness:.6g}", h.num_species]
                         for h in shown])
    return lines


def _table(headers: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    """Lines of a table whose columns are right-aligned under their headers."""
    cells = [headers, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]
    return [indent + "  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]


def _command_show(args: argparse.Namespace) -> int:
    loaded = Checkpoint.load_file(args.file)
    lines = _describe_genome(loaded) if isinstance(loaded, Genome) else _describe_population(loaded, args.history)
    print(f"{args.file}:")
    print("\n".join(lines))
    return 0


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an int no smaller than ``minimum`` (anything else is a usage error)."""

    def parse(text: str) -> int:
        value = int(text)  # a ValueError reads "invalid int value"
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _number(text: str, kind: type = float) -> Any:
    """``text`` as a ``kind``, or NaN when it is none (so that every range check refuses it)."""
    try:
        return kind(text)
    except ValueError:
        return math.nan


def _in_range(text: str, low: float, high: float, unit: str, kind: type = float) -> Any:
    """``text`` as a ``kind`` in ``low..high`` (never NaN or infinity); a usage error saying the range otherwise."""
    value = _number(text, kind)
    if not low <= value <= high:
        shape = "g" if kind is float else "d"
        raise argparse.ArgumentTypeError(f"must be {unit} in {low:{shape}}..{high:{shape}}, got {text!r}")
    return value


def _seconds(low: float) -> Callable[[str], float]:
    """An argparse ``type``: seconds from ``low`` up to a week (longer overflows socket timeouts)."""
    return lambda text: _in_range(text, low, _LONGEST_WAIT, "seconds")


def _heartbeat_interval(text: str) -> float:
    """An argparse ``type``: seconds in ``HEARTBEAT_RANGE`` (imported only when the flag is given)."""
    from neatify.distributed.config import HEARTBEAT_RANGE

    return _in_range(text, *HEARTBEAT_RANGE, "seconds")


def _frame_bytes(text: str) -> int:
    """An argparse ``type``: bytes in ``FRAME_BYTES_RANGE``."""
    from neatify.distributed.config import FRAME_BYTES_RANGE

    return _in_range(text, *FRAME_BYTES_RANGE, "whole bytes", kind=int)


def _finite(text: str) -> float:
    """An argparse ``type``: a finite float."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _processes(text: str) -> int:
    """An argparse ``type``: a process count, or ``auto`` for the CPUs this process may use."""
    from neatify.distributed.io.supervisor import usable_cpus

    return usable_cpus() if text == "auto" else _at_least(1)(text)


def _verbosity_arguments(parser: argparse.ArgumentParser, subcommand: bool) -> None:
    """``-v``/``-q``, accepted before and after the subcommand (no default on a subcommand, so a flag
    absent there keeps what the main parser read)."""
    parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if subcommand else 0,
                        help="log more (-v info, -vv debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if subcommand else False,
                        help="no per-generation progress lines; log errors only")


def _frame_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-frame-bytes``, the longest message accepted (on a standby: the primary's snapshot of the run)."""
    parser.add_argument("--max-frame-bytes", type=_frame_bytes, metavar="BYTES",
                        help="longest message accepted (default 64 MiB); a standby needs more than its primary's "
                             "snapshot of the population, about 28 bytes a connection")


def _run_file_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TOML run file with a [run] table and an optional [evolution] table")
    parser.add_argument("--generations", type=_at_least(1), metavar="N",
                        help="override [run] generations (the run's total)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neatify`` command."""
    parser = _Parser(prog="neatify", description="NEATify: evolve neural networks with NEAT.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity_arguments(parser, subcommand=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="evolve locally as a run file says",
                              description="Evolve locally as a TOML run file says (schema: docs/cli.md).")
    _run_file_arguments(run)
    run.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in this checkpoint")
    run.set_defaults(handler=_command_run)

    master = commands.add_parser(
        "master", help="evolve as a run file says, with fitness computed by workers",
        description="Evolve as a TOML run file says ([run] fitness is not used: the workers compute fitness). "
                    "Prints 'master listening on HOST:PORT' once it accepts workers. With --standby-of it is "
                    "instead the hot standby of another master, taking the run over when that one is gone.")
    _run_file_arguments(master)
    master.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; "
                        "0.0.0.0 for every interface)")
    master.add_argument("--port", type=int, default=5000, help="port to listen on; 0 picks a free one (default 5000)")
    master.add_argument("--min-workers", type=int, default=1,
                        help="workers to wait for before the first generation; later generations need only one")
    master.add_argument("--worker-wait-timeout", type=_seconds(0.0), metavar="SECONDS",
                        help="give up when no worker comes within this time (default: wait forever)")
    master.add_argument("--task-timeout", type=_seconds(0.01), default=300.0,
                        metavar="SECONDS", help="seconds a batch may take before it is given to another worker as "
                                                "well (a fitness that hangs on one worker does not stall the run)")
    master.add_argument("--error-fitness", type=_finite, metavar="F",
                        help="fitness given to a genome the fitness function failed on (default: the run ends with "
                             "an error naming the genome); also what a worker's forged error report can cost")
    master.add_argument("--max-genome-attempts", type=_at_least(1), default=3, metavar="N",
                        help="times a genome may kill, hang (past --task-timeout) or be refused by the worker "
                             "evaluating it alone before it is quarantined: given --error-fitness, or the run ends "
                             "with an error naming it (default 3)")
    master.add_argument("--checkpoint", metavar="FILE",
                        help="resume from FILE if it exists; save to it each generation")
    master.add_argument("--auth-token", help="shared secret workers must know (default: $NEATIFY_AUTH_TOKEN)")
    master.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (chain)")
    master.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert (default: inside that file)")
    master.add_argument("--scheduler-file", metavar="PATH",
                        help="write this master's address to PATH (on a shared filesystem) for workers given the "
                             "same --scheduler-file; removed at the end")
    master.add_argument("--heartbeat-interval", type=_heartbeat_interval, default=5.0, metavar="SECONDS",
                        help="seconds between heartbeats; a peer silent for 3 of them is lost")
    _frame_argument(master)
    master.add_argument("--standby-of", type=_standby_of, metavar="HOST:PORT",
                        help="be the hot standby of the master at HOST:PORT: refuse workers, receive its state "
                             "after every generation and take over when it is gone for 3 heartbeat intervals; "
                             "give it the primary's run file and token and a --checkpoint of its own, and the "
                             "workers both addresses (neatify worker --master PRIMARY,STANDBY)")
    master.add_argument("--tls-ca", metavar="PEM", help="with --standby-of: speak TLS to the primary and trust a "
                                                        "certificate this CA signed")
    master.add_argument("--metrics", type=_listen_address, metavar="[HOST:]PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics (HOST default 127.0.0.1; asks "
                             "for the auth token if one is set)")
    master.add_argument("--dashboard", type=_listen_address, metavar="[HOST:]PORT",
                        help="serve the live dashboard at http://HOST:PORT/ (HOST default 127.0.0.1; asks for the "
                             "auth token if one is set)")
    _http_connections_option(master)
    master.set_defaults(handler=_command_master)

    worker = commands.add_parser("worker", help="evaluate genomes for a master",
                                 description="Connect to a master and evaluate the genomes it sends until it "
                                             "shuts down.")
    worker.add_argument("fitness", metavar="MODULE:FUNCTION|RUNFILE.toml",
                        help="fitness function, called with a list of genomes; sets genome.fitness on each; or a run "
                             "file whose [task] table names the task")
    worker.add_argument("--setup", metavar="MODULE:FUNCTION",
                        help="run once before registering; its result is the fitness function's second argument")
    worker.add_argument("--master-host", help="master's address (default 127.0.0.1)")
    worker.add_argument("--master-port", type=int, help="master's port (default 5000)")
    worker.add_argument("--master", type=_addresses, metavar="HOST:PORT[,HOST:PORT...]",
                        help="the masters to try in turn (a primary and its standby) instead of --master-host and "
                             "--master-port")
    worker.add_argument("--scheduler-file", metavar="PATH",
                        help="read the master's address from PATH (written by neatify master --scheduler-file), "
                             "waiting for it, and again whenever the master is lost")
    worker.add_argument("--worker-id", help="name shown in the master's log (default: host-pid)")
    worker.add_argument("--capacity", type=int, default=50,
                        help="genomes per batch (for each evaluator process with --processes) this worker asks for")
    worker.add_argument("--max-connect-attempts", type=int, metavar="N",
                        help="give up after N failed connections in a row (default: retry forever)")
    worker.add_argument("--auth-token", help="shared secret (default: $NEATIFY_AUTH_TOKEN)")
    worker.add_argument("--tls-ca", metavar="PEM", help="speak TLS; trust a master certificate this CA signed")
    worker.add_argument("--tls-server-name", metavar="NAME",
                        help="name the master's certificate must carry (default: the host dialed)")
    worker.add_argument("--processes", type=_processes, metavar="N|auto",
                        help="evaluate in N local processes (auto: one per usable CPU) behind one connection, "
                             "restarting any that dies; the worker process itself is restarted too (default: this "
                             "process is the worker and evaluates)")
    _frame_argument(worker)
    worker.add_argument("--supervised-child", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(handler=_command_worker)

    status = commands.add_parser(
        "status", help="ask a running master for its workers, queue and speed",
        description="Print a master's status: workers connected, busy and idle, genomes pending in the current "
                    "generation, genomes/s of the last generation, uptime. The status client never counts as "
                    "a worker.")
    status.add_argument("address", type=_address, metavar="HOST:PORT", help="the master's address")
    status.add_argument("--json", action="store_true", help="print the report as one JSON object")
    status.add_argument("--auth-token", help="the master's shared secret (default: $NEATIFY_AUTH_TOKEN)")
    status.add_argument("--tls-ca", metavar="PEM", help="speak TLS; trust a master certificate this CA signed")
    status.add_argument("--tls-server-name", metavar="NAME",
                        help="name the master's certificate must carry (default: HOST)")
    status.add_argument("--timeout", type=_seconds(0.01), default=10.0, metavar="SECONDS",
                        help="give up when the master does not answer within this time")
    status.set_defaults(handler=_command_status)

    dashboard = commands.add_parser(
        "dashboard", help="serve the dashboard of a checkpoint or of a running master",
        description="Serve the dashboard page of a checkpoint (its history and champion) or of a running master "
                    "asked through its status port (its status only; neatify master --dashboard shows all).")
    dashboard.add_argument("source", metavar="CHECKPOINT|HOST:PORT", help="a checkpoint file, or a master's address")
    dashboard.add_argument("--address", type=_listen_address, default=("127.0.0.1", 8787), metavar="[HOST:]PORT",
                           help="where to serve the page (default 127.0.0.1:8787)")
    dashboard.add_argument("--auth-token", help="asked of the page's visitors, and proven to the master (default: "
                                                "$NEATIFY_AUTH_TOKEN)")
    dashboard.add_argument("--tls-ca", metavar="PEM", help="the master speaks TLS: trust a certificate this CA signed")
    _http_connections_option(dashboard)
    dashboard.set_defaults(handler=_command_dashboard)

    show = commands.add_parser("show", help="summarise a checkpoint or a genome JSON file",
                               description="Print a summary of a checkpoint or an exported genome.")
    show.add_argument("file", help="checkpoint (.json or .json.gz) or genome JSON file")
    show.add_argument("--history", type=_at_least(0), default=10, metavar="N", help="generations of history to list")
    show.set_defaults(handler=_command_show)
    for subcommand in commands.choices.values():
        _verbosity_arguments(subcommand, subcommand=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neatify`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a supervisor's children repeat
    level = logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        return args.handler(args)
    except BrokenPipeError:  # stdout closed early, as by `neatify show ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CLIError, ConfigError, CheckpointError, FitnessError, NeatPythonFitnessError, OSError) as exc:
        print(f"neatify: error: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"neatify: stopped by {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("neatify: interrupted", file=sys.stderr)
        return 130

