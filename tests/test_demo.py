"""``make demo`` (examples/distributed_demo.py): a master and two workers whose output reads line by line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_prints_each_generation_once_and_every_line_whole():
    demo = subprocess.run([sys.executable, "examples/distributed_demo.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    lines = demo.stdout.splitlines()
    named = [re.match(r" *(master|worker 1|worker 2|demo) \| (.*)$", line) for line in lines]
    assert all(named), [line for line, match in zip(lines, named) if not match]
    for match in named:  # one record a line: two processes' writes never share one
        assert match[2].count(" neatify.") <= 1 and match[2].count("Gen ") <= 1, match[0]
    generations = [int(m[2].split()[1].rstrip(":")) for m in named if m[2].startswith("Gen ")]
    assert generations == list(range(len(generations))) and generations, "each generation once, in order"
    assert not any(re.search(r"generation \d+: best", m[2]) for m in named)
    assert lines[-1].endswith("master and workers exited with [0, 0, 0]")
