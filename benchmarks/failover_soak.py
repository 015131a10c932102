"""Soak the failover model: many more fault sequences than `make test` explores (tests/test_failover_model.py).

    PYTHONPATH=src python benchmarks/failover_soak.py --examples 2000 --steps 60 --seed 1

``--no-progress-check`` leaves invariant 3 (no replicated state lost) unchecked, to explore the others;
``--no-cross-standby`` narrows the faults.

Prints how many sequences ran in what time and, if an invariant broke, the minimal sequence Hypothesis found
(then exits 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import run_state_machine_as_test

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_failover_model import FailoverMachine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="fault sequences to run")
    parser.add_argument("--steps", type=int, default=60, help="most steps in one sequence")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (runs are reproducible)")
    parser.add_argument("--no-cross-standby", action="store_true",
                        help="never restart a master as the standby of the other")
    parser.add_argument("--no-progress-check", action="store_true",
                        help="leave invariant 3 (no replicated state lost) unchecked")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    counts = {"sequences": 0, "steps": 0}

    class Counted(FailoverMachine):
        """The model's machine, counting what it explores."""

        def __init__(self) -> None:
            super().__init__()
            counts["sequences"] += 1

        cross_standby = not args.no_cross_standby
        progress = not args.no_progress_check

        def check_invariants(self, *args: Any) -> None:
            counts["steps"] += 1
            super().check_invariants(*args)

    chosen = settings(max_examples=args.examples, stateful_step_count=args.steps, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
    started = time.perf_counter()
    try:
        run_state_machine_as_test(seed(args.seed)(Counted), settings=chosen)
    except AssertionError as exc:
        steps = "\n".join(getattr(exc, "__notes__", []))
        print(f"counterexample after {counts['sequences']} sequences ({time.perf_counter() - started:.0f}s):\n{exc}\n"
              f"{steps}")
        return 1
    print(f"{counts['sequences']} sequences, {counts['steps']} steps checked, {time.perf_counter() - started:.0f}s: "
          "no invariant broken")
    return 0


if __name__ == "__main__":
    sys.exit(main())
