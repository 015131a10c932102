"""Is a run with the dashboard and metrics on slower? Seconds per generation with both off and on, side by side.

    python benchmarks/dashboard_overhead.py

A real master (``DistributedPopulation``) and real worker processes on 127.0.0.1 (``distributed.py``'s, with the
trivial ``--batch-views`` fitness: the master is then the bottleneck, where any cost of serving shows most). With
them on, ``RunServers`` serves ``/metrics`` and the dashboard from the master's event loop while a separate process
polls ``/metrics`` and ``/api/state`` every ``--poll`` seconds (an open page polls once a second; Prometheus
scrapes every 15 s by default). Runs alternate off, on, off, on... so the machine's load drifts over both alike;
the ratio is of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
WORKER = Path(__file__).with_name("distributed.py")


def seconds_per_generation(watched: bool, workers: int, pop_size: int, generations: int,
                           poll: float) -> tuple[float, float]:
    """Mean wall time and master CPU time (this process: breeding, the event loop, the pages) of a generation after
    the workers registered, the metrics and dashboard on or off."""
    from neatify.distributed import DistributedConfig, DistributedPopulation  # not in the light poller process
    from neatify.distributed.io.dashboard import RunServers

    config = DistributedConfig(host=HOST, port=0, min_workers=workers, worker_wait_timeout=60.0)
    with DistributedPopulation(pop_size, 2, 1, seed=0, distributed_config=config) as pop:
        procs = [subprocess.Popen([sys.executable, str(WORKER), "worker", str(pop.port), "0.0", "True"])
                 for _ in range(workers)]
        servers = RunServers(pop, pop.coordinator, (HOST, 0), (HOST, 0)) if watched else None
        if servers is not None:
            procs.append(subprocess.Popen([sys.executable, __file__, "poll", str(servers.metrics.port),
                                           str(servers.dashboard.port), str(poll)]))
        try:
            pop.coordinator.wait_for_workers(workers)
            for _ in range(3):  # warm-up: the first generations compile, connect, start the poller
                pop.run_generation(lambda genomes: None)
            time.sleep(1.0)
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(generations):
                pop.run_generation(lambda genomes: None)
            return (time.perf_counter() - start) / generations, (time.process_time() - cpu) / generations
        finally:
            if servers is not None:
                procs.pop().kill()
                servers.close()
            pop.shutdown()
            for proc in procs:
                proc.wait(timeout=30)


def poll_main(metrics_port: int, dashboard_port: int, interval: float) -> None:
    """Scrape and ask the dashboard's state every ``interval`` seconds, as Prometheus and an open page do."""
    since = 0
    while True:
        for url in (f"http://{HOST}:{metrics_port}/metrics", f"http://{HOST}:{dashboard_port}/api/state?since={since}"):
            with urllib.request.urlopen(url, timeout=10) as answer:
                answer.read()
        since += 1
        time.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop-size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--generations", type=int, default=30, help="generations timed per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs each way, alternated")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between two polls of the pages")
    args = parser.parse_args()
    print(f"population {args.pop_size}, {args.workers} workers, trivial fitness, {args.generations} generations a "
          f"run, pages polled every {args.poll:g} s; seconds per generation (wall, and the master's CPU)")
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for watched in (False, True):
            wall, cpu = seconds_per_generation(watched, args.workers, args.pop_size, args.generations, args.poll)
            times[watched].append((wall, cpu))
            print(f"  run {repeat + 1} {'on ' if watched else 'off'}: wall {wall:.4f}  cpu {cpu:.4f}", flush=True)
    print(f"  {'':6} {'off':>8} {'on':>8} {'on/off':>7}   (medians; ranges off | on)")
    for k, label in enumerate(("wall", "cpu")):
        off, on = ([run[k] for run in times[w]] for w in (False, True))
        print(f"  {label:6} {statistics.median(off):8.4f} {statistics.median(on):8.4f} "
              f"{statistics.median(on) / statistics.median(off):7.3f}   "
              f"{min(off):.4f}-{max(off):.4f} | {min(on):.4f}-{max(on):.4f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["poll"]:
        poll_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
