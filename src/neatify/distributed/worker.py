"""The worker: ``WorkerNode`` connects to a master and evaluates batches with ``GenomeEvaluator``."""

from __future__ import annotations

import logging
import math
import numbers
import os
import queue
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from neatify.distributed import auth, tls
from neatify.distributed.config import AUTH_TOKEN_ENV
from neatify.distributed.errors import (
    AuthenticationError, ConnectionClosed, ProtocolError, RegistrationError,
)
from neatify.distributed.genome_wire import decode_genomes
from neatify.distributed.protocol import PROTOCOL_VERSION, FramedConnection, MessageType
from neatify.genome import Genome

logger = logging.getLogger("neatify.distributed.worker")

FitnessFunction = Callable[[list[Genome]], Any]

_REGISTRATION_TIMEOUT = 30.0
_DEFAULT_MASTER_SILENCE = 30.0
_LEAVE_GRACE = 5.0
"""Seconds a leaving worker waits for the master to close the connection."""


class GenomeEvaluator:
    """Runs a fitness function on a batch and reports, per genome, a float fitness or a traceback."""

    def __init__(self, fitness_function: FitnessFunction) -> None:
        self.fitness_function = fitness_function

    def evaluate(self, genomes: list[Genome]) -> tuple[list[list], list[list]]:
        """``([[id, fitness], ...], [[id, traceback], ...])`` covering every genome exactly once.

        The batch is evaluated in one call; if that raises, the genomes it left without a fitness
        are evaluated one at a time, so a failure is pinned to its genome and the others still
        get their fitness whatever the batch composition.
        """
        for genome in genomes:
            genome.fitness = None
        errors: dict[int, str] = {}
        try:
            self.fitness_function(genomes)
        except Exception:
            first_trace = traceback.format_exc()
            for genome in genomes:
                if genome.fitness is None:
                    try:
                        self.fitness_function([genome])
                    except Exception:
                        errors[genome.id] = traceback.format_exc()
            if not errors:
                unset = next((g for g in genomes if g.fitness is None), genomes[0])
                errors[unset.id] = first_trace
        fitness: list[list] = []
        for genome in genomes:
            if genome.id in errors:
                continue
            value = _as_float(genome)
            if isinstance(value, str):
                errors[genome.id] = value
            else:
                fitness.append([genome.id, value])
        return fitness, [[genome_id, trace] for genome_id, trace in errors.items()]


def _as_float(genome: Genome) -> float | str:
    """The genome's fitness as a float, or a message saying why it is not one."""
    value = genome.fitness
    if value is None:
        return f"FitnessError: the fitness function left genome {genome.id} without a fitness"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (use .item() on a tensor)" if hasattr(value, "item") else ""
        return f"FitnessError: genome {genome.id} has fitness of type {type(value).__name__}{hint}"
    value = float(value)
    if not math.isfinite(value):
        return f"FitnessError: genome {genome.id} has non-finite fitness {value}"
    return value


class WorkerNode:
    """A worker process's node: connects (retrying with backoff), registers, evaluates batches.

    ``start()`` blocks until the master sends SHUTDOWN_SIGNAL (then returns) or ``stop()`` is called.
    It raises ``RegistrationError``/``AuthenticationError`` when the master refuses it for good or
    cannot prove it is the master (auth token, TLS certificate), and ``ConnectionError`` after
    ``max_connect_attempts`` failed tries in a row (None retries forever). With ``tls_ca`` it speaks
    TLS and checks that the master's certificate chains to that CA and names ``tls_server_name``
    (default: ``master_host``).
    """

    def __init__(self, master_host: str, master_port: int, worker_id: int | str | None = None,
                 fitness_function: FitnessFunction | None = None, capacity: int = 50,
                 auth_token: str | None = None, max_connect_attempts: int | None = None,
                 retry_initial: float = 0.5, retry_max: float = 10.0,
                 max_frame_bytes: int = 64 * 1024 * 1024, tls_ca: str | None = None,
                 tls_server_name: str | None = None) -> None:
        if fitness_function is None:
            raise ValueError("a WorkerNode needs a fitness_function")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.master_host = master_host
        self.master_port = master_port
        self.worker_id = worker_id if worker_id is not None else f"{socket.gethostname()}-{os.getpid()}"
        self.evaluator = GenomeEvaluator(fitness_function)
        self.capacity = capacity
        self.auth_token = auth_token if auth_token is not None else (os.environ.get(AUTH_TOKEN_ENV) or None)
        self.max_connect_attempts = max_connect_attempts
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.max_frame_bytes = max_frame_bytes
        self.tls_server_name = tls_server_name or master_host
        self._tls = None if tls_ca is None else tls.client_context(tls_ca)
        self.batches_done = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        """Leave: ``start()`` tells the master (after the batch in hand) and returns. Signal-handler safe."""
        self._stop.set()

    def start(self) -> None:
        """Serve the master until it shuts us down or ``stop()`` is called (see the class docstring)."""
        failures = 0
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.master_host, self.master_port), timeout=5.0)
            except OSError as exc:
                failures += 1
                self._back_off(failures, f"cannot reach master ({exc})")
                continue
            conn = FramedConnection(sock, self.max_frame_bytes)
            registered = False
            try:
                if self._tls is not None:
                    conn.start_tls(self._tls, time.monotonic() + _REGISTRATION_TIMEOUT, self.tls_server_name)
                interval = self._register(conn)
                registered, failures = True, 0
                self._serve(conn, interval)
                return
            except ssl.SSLCertVerificationError as exc:
                raise AuthenticationError(f"worker {self.worker_id}: the TLS certificate of the master at "
                                          f"{self._where} is not trusted ({exc.verify_message}); check tls_ca and "
                                          "tls_server_name") from None
            except (ConnectionClosed, ProtocolError, OSError) as exc:
                if self._stop.is_set():
                    return
                if registered:
                    logger.warning("worker %s: lost the master (%s); reconnecting", self.worker_id, exc)
                failures += 1
                self._back_off(failures, f"{'connection lost' if registered else 'registration failed'} ({exc})")
            finally:
                conn.close()

    @property
    def _where(self) -> str:
        return f"{self.master_host}:{self.master_port}"

    def _back_off(self, failures: int, reason: str) -> None:
        """Wait before the next attempt (doubling up to retry_max); raise once max_connect_attempts is spent."""
        where = self._where
        if self.max_connect_attempts is not None and failures >= self.max_connect_attempts:
            raise ConnectionError(f"worker {self.worker_id}: could not register with master at {where} after "
                                  f"{failures} attempt(s): {reason}")
        delay = min(self.retry_max, self.retry_initial * 2 ** (failures - 1))
        logger.info("worker %s: %s at %s; attempt %d, retrying in %.1fs", self.worker_id, reason, where,
                    failures, delay)
        self._stop.wait(delay)

    def _register(self, conn: FramedConnection) -> float:
        """Register (mutually authenticated with a token); returns the master's heartbeat interval.

        Raises ConnectionRefusedError when refused for now, AuthenticationError/RegistrationError for good.
        """
        nonce = auth.new_nonce()
        hello: dict[str, Any] = {"protocol_version": PROTOCOL_VERSION, "worker_id": self.worker_id,
                                 "capacity": self.capacity, "nonce": nonce}
        conn.send(MessageType.WORKER_REGISTRATION, hello)
        deadline = time.monotonic() + _REGISTRATION_TIMEOUT
        master_proven = False
        while True:
            payload = self._registration_answer(conn, deadline)
            if payload["status"] == "accepted":
                if self.auth_token and not master_proven:
                    raise self._distrust(conn, "accepted this worker without proving it knows the auth token (it "
                                               "has none set, or it is not the real master)")
                conn.mark_registered()
                logger.info("worker %s: registered with master %s", self.worker_id, self._where)
                return payload.get("heartbeat_interval", _DEFAULT_MASTER_SILENCE / 3)
            if master_proven or "nonce" not in payload or "proof" not in payload:
                raise ProtocolError("a challenge must come once, with a nonce and a proof")
            if not self.auth_token:
                raise AuthenticationError(f"worker {self.worker_id}: master at {self._where} requires an auth "
                                          f"token (set auth_token or ${AUTH_TOKEN_ENV})")
            if not auth.verify(payload["proof"], self.auth_token, "master", PROTOCOL_VERSION, nonce,
                               payload["nonce"], self.worker_id):
                raise self._distrust(conn, "could not prove it knows the auth token (the tokens differ, or it is "
                                           "not the real master)")
            master_proven = True
            conn.send(MessageType.WORKER_REGISTRATION, {**hello, "proof": auth.proof(
                self.auth_token, "worker", PROTOCOL_VERSION, nonce, payload["nonce"], self.worker_id)})

    def _registration_answer(self, conn: FramedConnection, deadline: float) -> dict[str, Any]:
        """The master's next REGISTRATION_ACK payload; an ERROR_REPORT raises (see ``_register``)."""
        try:
            message = conn.recv(deadline)
        except ConnectionClosed as exc:
            hint = "" if self._tls is not None else " (a master using TLS does this to plain peers: give tls_ca)"
            raise ConnectionClosed(f"{exc} before answering the registration{hint}") from None
        if message is None:
            raise ProtocolError(f"no registration answer within {_REGISTRATION_TIMEOUT:.0f}s")
        mtype, payload = message
        if mtype is MessageType.ERROR_REPORT:
            reason = payload["message"]
            if not payload["fatal"]:
                raise ConnectionRefusedError(f"refused for now: {reason}")
            logger.error("worker %s: master refused registration: %s", self.worker_id, reason)
            error = AuthenticationError if payload["code"] == "auth" else RegistrationError
            raise error(f"worker {self.worker_id}: master at {self._where} refused registration: {reason}")
        if mtype is not MessageType.REGISTRATION_ACK:
            raise ProtocolError(f"expected REGISTRATION_ACK, got {mtype.name}")
        return payload

    def _distrust(self, conn: FramedConnection, why: str) -> AuthenticationError:
        """Tell the master why this worker will not work for it (best effort); the error to raise."""
        message = f"worker {self.worker_id}: master at {self._where} {why}; refusing to work for it"
        logger.error("%s", message)
        try:
            conn.send(MessageType.ERROR_REPORT, {"message": message, "fatal": True, "code": "auth"})
        except OSError:
            pass
        return AuthenticationError(message)

    def _serve(self, conn: FramedConnection, heartbeat_interval: float) -> None:
        """Evaluate batches until shut down or stopped (returns) or the connection is lost (raises)."""
        tasks: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()
        reader = threading.Thread(target=self._read, args=(conn, 3 * heartbeat_interval, tasks),
                                  name=f"neatify-worker-{self.worker_id}-reader", daemon=True)
        reader.start()
        while not self._stop.is_set():
            try:
                task = tasks.get(timeout=0.5)
            except queue.Empty:
                continue
            if task is None:
                logger.info("worker %s: shutdown received after %d batch(es); exiting", self.worker_id,
                            self.batches_done)
                return
            if isinstance(task, BaseException):
                raise task
            genomes = task["genomes"]
            start = time.monotonic()
            fitness, errors = self.evaluator.evaluate(genomes)
            conn.send(MessageType.FITNESS_REPORT, {"batch_id": task["batch_id"], "fitness": fitness,
                                                   "errors": errors, "elapsed": time.monotonic() - start})
            self.batches_done += 1
        logger.info("worker %s: leaving after %d batch(es)", self.worker_id, self.batches_done)
        conn.send(MessageType.STATUS_UPDATE, {"state": "leaving"})
        # Hang up only after the master has (or _LEAVE_GRACE): a batch it sends meanwhile then arrives,
        # ignored, instead of failing its send, and the master learns why this worker went.
        reader.join(_LEAVE_GRACE)

    def _read(self, conn: FramedConnection, silence_limit: float,
              tasks: queue.Queue[dict[str, Any] | BaseException | None]) -> None:
        """Reader thread: answer heartbeats at once, queue tasks, report the end of the connection."""
        try:
            while True:
                message = conn.recv(idle=silence_limit)  # a big task still arriving is not silence
                if message is None:
                    raise ConnectionClosed(f"master silent for {silence_limit:.1f}s")
                mtype, payload = message
                if mtype is MessageType.HEARTBEAT_REQUEST:
                    conn.send(MessageType.HEARTBEAT_RESPONSE, {"sent": payload["sent"]})
                elif mtype is MessageType.TASK_ASSIGNMENT:
                    tasks.put({**payload, "genomes": decode_genomes(payload)})
                elif mtype is MessageType.SHUTDOWN_SIGNAL:
                    self._stop.set()
                    tasks.put(None)
                    return
                else:
                    raise ProtocolError(f"unexpected {mtype.name} from the master")
        except ProtocolError as exc:
            try:  # tell the master why before hanging up
                conn.send(MessageType.ERROR_REPORT, {"message": str(exc), "fatal": False, "code": "error"})
            except OSError:
                pass
            tasks.put(exc)
        except (ConnectionClosed, OSError) as exc:
            tasks.put(exc)
