"""Every fenced block of README.md and docs/*.md runs as written, here or in the test named for it.

A distributed snippet runs with its master and workers as local processes on 127.0.0.1, its port
replaced by a free one only where the doc says the port is an example. Blocks without a language
are output samples, layouts and the command synopsis (checked against ``--help``), not code.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from distributed_helpers import free_port
from helpers import doc_blocks, doc_snippet

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]

RUN_ELSEWHERE = {
    ("README.md", "pop.run_generation(xor_fitness)"): "test_quickstart.py",
    ("docs/es_hyperneat.md", "def maze_fitness(genomes)"): "test_hyperneat_maze.py",
    ("docs/usage.md", 'register_activation("softsign"'): "test_activations.py",
    ("docs/usage.md", "EvolutionConfig.from_neat_python("): "test_config.py",
    ("docs/usage.md", "EvolutionConfig(target_species=25)"): "test_population.py",
    ("docs/usage.md", "RayEvaluator(fitness, num_actors=16"): "test_ray.py",
    ("docs/batched.md", "batch = add_nodes(batch, rows"): "test_batch_structure.py",
    ("docs/usage.md", 'objectives=["fitness", "novelty", "size"]'): "test_behaviours.py",
    ("docs/usage.md", "Checkpoint.export_elites_json(pop.selection.elites"): "test_behaviours.py",
    ("docs/usage.md", "scores = novelty(behaviours, archive="): "test_novelty.py",
    ("docs/mazes.md", "def maze_fitness(genomes):"): "test_maze.py",
    ("docs/es_hyperneat.md", "es = ESHyperNEAT(inputs, outputs"): "test_es_hyperneat.py",
    ("docs/gym.md", 'GymEvaluator("CartPole-v1", episodes=5'): "test_gym_docs.py",
    ("docs/gym.md", 'GymEvaluator("Hopper-v5", seed=1)'): "test_gym_docs.py",
    ("docs/gym.md", 'gym = "CartPole-v1"'): "test_gym_docs.py",
    ("docs/gym.md", "neatify worker cartpole.toml"): "test_gym_docs.py",
    ("docs/gym.md", "champion = HeldOutChampion("): "test_gym_docs.py",
    ("docs/gym.md", '"InvertedDoublePendulum-v5", episodes=5'): "test_gym_docs.py",
    ("docs/hyperneat.md", "substrate = Substrate(inputs=field"): "test_hyperneat_runs.py",
    ("docs/hyperneat.md", "champion = pop.run(fitness, generations=3)"): "test_hyperneat_runs.py",
}
RUN_HERE = {
    ("README.md", "python examples/distributed_xor_master.py"): "test_xor_example_commands",
    ("README.md", "neatify --version"): "test_install_to_cartpole_commands",
    ("docs/cli.md", "# xor.toml"): "test_cli_run_file_and_fitness_module",
    ("docs/cli.md", "# xor.py"): "test_cli_run_file_and_fitness_module",
    ("docs/distributed.md", "DistributedPopulation("): "test_distributed_master_and_worker_snippets",
    ("docs/distributed.md", "DistributedEvaluator(DistributedConfig("): "test_distributed_master_and_worker_snippets",
    ("docs/distributed.md", "worker = WorkerNode("): "test_distributed_master_and_worker_snippets",
    ("docs/distributed.md", "python examples/distributed_xor_master.py"): "test_xor_example_commands",
    ("docs/distributed.md", "openssl req -x509"): "test_openssl_commands_make_a_certificate_the_ca_signed",
    ("docs/usage.md", "champion = pop.run(fitness, generations=100"): "test_usage_session",
    ("docs/usage.md", "StatisticsReporter()"): "test_usage_session",
    ("docs/usage.md", "plot_species(stats"): "test_usage_session",
    ("docs/usage.md", "ParallelEvaluator(fitness, workers=4)"): "test_usage_parallel_script",
    ("docs/usage.md", "export_torchscript(champion"): "test_usage_session",
    ("docs/batched.md", "module = NeatPopulationModule(genomes)"): "test_batched_snippets",
    ("docs/batched.md", "def xor_fitness(genomes):"): "test_batched_snippets",
    ("docs/batched.md", "steps = rollout(controllers, env)"): "test_batched_snippets",
}
EXCLUDED = {
    ("README.md", "make demo"): "`make test` is this suite; `make demo` builds .venv from the package index and then "
                                "runs examples/distributed_demo.py, which test_distributed_protocol.py runs "
                                "(test_make_targets_exist checks both targets)",
    ("docs/distributed.md", "--scheduler-file $HOME/run/scheduler.json"): "a master on 0.0.0.0 and workers on the "
                                                                          "nodes of a cluster; the same flow on "
                                                                          "127.0.0.1 runs in test_cluster.py and "
                                                                          "test_cli.py",
    ("docs/distributed.md", "--standby-of node0:5000"): "a primary, its standby and workers on the nodes of a "
                                                       "cluster; the same flow on 127.0.0.1 runs in test_standby.py",
    ("docs/distributed.md", "#SBATCH --job-name=neat"): "a Slurm batch script: needs a Slurm cluster; its "
                                                          "commands run on 127.0.0.1 in test_cluster.py",
    ("docs/distributed.md", "ssh node0"): "starts processes on other machines over SSH; the same commands on "
                                          "127.0.0.1 run in test_cli.py",
    ("docs/distributed.md", 'RayEvaluator(fitness, address="auto")'): "needs a running Ray cluster to connect "
                                                                       "to; RayEvaluator runs in test_ray.py",
    ("docs/gym.md", "pip install '.[mujoco]'"): "installs from the package index into a new virtualenv (what `make` "
                                               "does); the suite runs in one with these extras",
    ("docs/cli.md", "# on the master machine"): "a master on 0.0.0.0 and workers on other machines "
                                                "(MASTER-ADDRESS); the same commands on 127.0.0.1 run in "
                                                "test_cli.py",
}
NOT_RUN_LINES = {
    "python -m venv .venv && . .venv/bin/activate": "makes and enters a virtual environment: the suite runs in one",
    "pip install torch==2.13.0 -e '.[gym]'": "installs from the package index (what `make` does)",
}


def _env() -> dict[str, str]:
    """This interpreter's bin folder first on PATH, so `python` and `neatify` are the suite's."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_every_code_block_is_run_or_excluded_with_a_reason():
    """A new code block in the docs must be run by a test or be listed in EXCLUDED with why."""
    covered = {**RUN_ELSEWHERE, **RUN_HERE, **EXCLUDED}
    for doc in DOCS:
        for language, text in doc_blocks(doc):
            if not language:
                continue
            owners = [marker for (d, marker) in covered if d == doc and marker in text]
            assert len(owners) == 1, f"{doc}: a {language} block matched by {owners}:\n{text}"
    for doc, marker in covered:
        assert sum(marker in text for lang, text in doc_blocks(doc) if lang) == 1, (doc, marker)


def _python_lines(block: str) -> list[list[str]]:
    """The commands of a shell block (comments dropped), each starting with `python`."""
    commands = [shlex.split(line, comments=True) for line in block.splitlines()]
    commands = [argv for argv in commands if argv]
    assert all(argv[0] == "python" for argv in commands), commands
    return commands


@pytest.mark.slow
def test_xor_example_commands(procs):
    """README's commands are docs/distributed.md's; 5000 is, in both, an example port."""
    readme = doc_snippet("README.md", "python examples/distributed_xor_master.py", "bash")
    guide = doc_snippet("docs/distributed.md", "python examples/distributed_xor_master.py", "bash")
    assert _python_lines(readme) == _python_lines(guide)
    port = str(free_port())
    started = [procs.start(f"xor-{i}", *[port if arg == "5000" else arg for arg in argv[1:]])
               for i, argv in enumerate(_python_lines(guide))]
    for proc in started:
        assert proc.wait(timeout=120) == 0, procs.log(proc)
    assert "Best Fitness" in procs.log(started[0])


@pytest.mark.slow
def test_install_to_cartpole_commands():
    block = doc_snippet("README.md", "neatify --version", "bash")
    lines = [line for line in block.splitlines() if not any(line.startswith(skip) for skip in NOT_RUN_LINES)]
    assert len(lines) == len(block.splitlines()) - len(NOT_RUN_LINES)
    result = subprocess.run(["bash", "-e", "-c", "\n".join(lines)], cwd=ROOT, env=_env(), capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("neatify ") and "usage: distributed_cartpole.py" in result.stdout
    assert "champion:" in result.stdout


@pytest.mark.slow
def test_make_targets_exist():
    result = subprocess.run(["make", "-n", "demo", "test", "test-fast"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "examples/distributed_demo.py" in result.stdout and "lint-imports" in result.stdout
    assert "-m pytest\n" in result.stdout and '-m pytest -m "not slow"' in result.stdout


@pytest.mark.slow
def test_cli_run_file_and_fitness_module(tmp_path):
    """docs/cli.md's xor.toml and xor.py, saved under the names they give, make `neatify run xor.toml` work."""
    for marker in ("# xor.toml", "# xor.py"):
        language = "toml" if marker.endswith("toml") else "python"
        (tmp_path / marker[2:]).write_text(doc_snippet("docs/cli.md", marker, language))
    result = subprocess.run(["neatify", "run", "xor.toml"], cwd=tmp_path, env=_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("champion: genome")
    assert {"champion.json", "stats.csv", "checkpoints"} <= {p.name for p in tmp_path.iterdir()}


def test_cli_synopsis_matches_the_parser():
    """Every option in docs/cli.md's synopsis is one its subcommand accepts."""
    from neatify.cli.main import build_parser

    synopsis = next(text for lang, text in doc_blocks("docs/cli.md") if not lang)
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    command = None
    for line in synopsis.splitlines():
        words = line.split()
        if words[0] == "neatify":
            command = words[1] if words[1] in commands else None
        accepting = parser if command is None else commands[command]
        known = {opt for action in accepting._actions for opt in action.option_strings}
        options = set(re.findall(r"--[a-z-]+", line))
        assert options and options <= known, (line, options - known)


@pytest.mark.slow
def test_distributed_master_and_worker_snippets(procs, tmp_path):
    """Each master snippet with two copies of the worker snippet, on a free port (the docs call 5000 an example)."""
    worker = doc_snippet("docs/distributed.md", "worker = WorkerNode(")
    for marker in ("DistributedPopulation(", "DistributedEvaluator(DistributedConfig("):
        master = doc_snippet("docs/distributed.md", marker)
        assert "5000 is an example port" in master or "port=5000, min_workers=2)) as evaluator:  # any free port" \
            in master
        port = str(free_port())
        for name, text in (("master", master), ("worker", worker)):
            (tmp_path / f"{name}.py").write_text(text.replace("5000", port))
        started = [procs.start(f"master-{port}", "master.py", cwd=tmp_path),
                   *(procs.start(f"worker-{port}-{i}", "worker.py", cwd=tmp_path) for i in (1, 2))]
        for proc in started:
            assert proc.wait(timeout=120) == 0, procs.log(proc)
        if marker == "DistributedPopulation(":
            assert "Gen 49: Best Fitness" in procs.log(started[0]) and (tmp_path / "xor-run.json").exists()


@pytest.mark.slow
def test_openssl_commands_make_a_certificate_the_ca_signed(tmp_path):
    block = doc_snippet("docs/distributed.md", "openssl req -x509", "bash")
    result = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    check = subprocess.run(["openssl", "verify", "-CAfile", "ca.pem", "master.pem"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=30)
    assert check.stdout.strip() == "master.pem: OK", check.stderr


def test_usage_session(tmp_path, monkeypatch):
    """docs/usage.md's snippets that continue its first one, run one after the other in one namespace."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "usage_session"}
    for marker in ("champion = pop.run(fitness, generations=100", "StatisticsReporter()", "plot_species(stats",
                   "export_torchscript(champion"):
        exec(doc_snippet("docs/usage.md", marker), namespace)
    assert namespace["champion"].fitness >= -0.01 and len(namespace["stats"].rows) == 100
    assert {"stats.csv", "fitness.png", "species.svg", "champion.png", "champion.pt", "champion.onnx",
            "checkpoints"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.slow
def test_usage_parallel_script(tmp_path):
    """The parallel snippet, saved as a script and run: its worker processes import it (spawn)."""
    (tmp_path / "evolve.py").write_text(doc_snippet("docs/usage.md", "ParallelEvaluator(fitness, workers=4)"))
    result = subprocess.run([sys.executable, "evolve.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and not result.stderr, result.stderr


def test_batched_snippets():
    namespace: dict = {}
    exec(doc_snippet("docs/batched.md", "module = NeatPopulationModule(genomes)"), namespace)
    assert tuple(namespace["out"].shape) == (150, 8, 1)
    exec(doc_snippet("docs/batched.md", "def xor_fitness(genomes):"), namespace)
    genomes = namespace["genomes"]
    namespace["xor_fitness"](genomes)
    assert all(0.0 <= genome.fitness <= 4.0 for genome in genomes)
    exec(doc_snippet("docs/batched.md", "steps = rollout(controllers, env)"), namespace)
    steps = namespace["steps"]
    assert steps.shape == (150, 5) and 1 <= steps.min() and steps.max() <= 500


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _outside_code(doc: Path) -> str:
    """``doc``'s text without its fenced blocks (a ``# comment`` there is no heading, a link no link)."""
    return re.sub(r"^( *)```.*?^\1```", "", doc.read_text(), flags=re.MULTILINE | re.DOTALL)


def _anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives ``doc``'s headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", _outside_code(doc), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_relative_link_reaches_its_file_and_heading():
    """A link of README.md or docs/ to a file of the repository names one that exists, and its #fragment
    one of that file's headings (benchmarks.md's sections were renamed once already)."""
    broken = []
    for doc in DOCS:
        for link in _LINK.findall(_outside_code(ROOT / doc)):
            path, _, fragment = link.partition("#")
            if "://" in path:
                continue
            target = (ROOT / doc).parent / path if path else ROOT / doc
            if not target.exists() or (fragment and target.suffix == ".md" and fragment not in _anchors(target)):
                broken.append(f"{doc}: {link}")
    assert not broken, broken
