"""The ``neatify`` command, run as a real subprocess (``python -m neatify.cli.main``) and in-process via main()."""

from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import neatify as neatify_package
from neatify import Checkpoint, EvolutionConfig, Population
from neatify.cli.main import main
from neatify.config import tomllib

from distributed_helpers import alive, children_of, free_port, wait_until

FITNESS_MODULE = Path(__file__).with_name("xor_task.py").read_text() + """
fitness = xor_fitness  # the name the run file gives
"""
"""A user's fitness module, saved in the project folder as xorfit.py: the tests' XOR task."""

RUN_FILE = """
[run]
fitness = "xorfit:fitness"
num_inputs = 2
num_outputs = 1
generations = 6
seed = 11
checkpoint_dir = "ck"
checkpoint_every = 3
statistics = "stats.json"
champion = "champion.json"

[evolution]
population_size = 40
prob_add_node = 0.2
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "xorfit.py").write_text(FITNESS_MODULE)
    (tmp_path / "run.toml").write_text(RUN_FILE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def library_champion(project):
    """The champion of RUN_FILE's run done directly with the library."""
    sys.path.insert(0, str(project))
    try:
        from xorfit import fitness
    finally:
        sys.path.remove(str(project))
    config = EvolutionConfig(population_size=40, prob_add_node=0.2)
    return Population(num_inputs=2, num_outputs=1, seed=11, config=config).run(fitness, 6)


def neatify(*args, cwd):
    return subprocess.run([sys.executable, "-m", "neatify", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.slow
def test_run_as_subprocess_matches_the_library_and_show_summarises(project):
    result = neatify("run", "run.toml", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:6]] == [["gen", str(g)] for g in range(6)]
    assert lines[-1].startswith("champion: genome")

    champion = Checkpoint.load_genome_json(project / "champion.json")
    assert champion.to_dict() == library_champion(project).to_dict()
    assert sorted(p.name for p in (project / "ck").iterdir()) == ["checkpoint-2.json.gz", "checkpoint-5.json.gz"]
    assert (project / "stats.json").read_text().startswith("[")

    shown = neatify("show", "ck/checkpoint-5.json.gz", "--history", "2", cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert "generation 5 (evaluated), 40 genomes" in shown.stdout
    assert f"genome {champion.id}: fitness" in shown.stdout
    species, history = shown.stdout.split("species:\n")[1].split("history (last 2):\n")
    assert len(history.splitlines()) == 1 + 2
    assert species.split()[:5] == ["id", "size", "best", "fitness", "staleness"]
    for table in (species.splitlines(), history.splitlines()):  # right-aligned columns: equal line lengths
        assert len({len(line) for line in table}) == 1, table


def test_resume_continues_the_run_exactly(project, capsys):
    assert main(["run", "run.toml", "--quiet"]) == 0
    full = Checkpoint.load_genome_json("champion.json").to_dict()
    (project / "champion.json").unlink()
    assert main(["run", "run.toml", "--quiet", "--resume", "ck/checkpoint-2.json.gz"]) == 0
    assert Checkpoint.load_genome_json("champion.json").to_dict() == full
    assert capsys.readouterr().out.count("champion:") == 2


def test_show_a_genome_file(project, capsys):
    genome = Population(num_inputs=3, num_outputs=2, seed=1).genomes[0]
    Checkpoint.export_genome_json(genome, "g.json")
    assert main(["show", "g.json"]) == 0
    out = capsys.readouterr().out
    assert "genome 0: fitness not evaluated" in out and "inputs 3, outputs 2, hidden 0" in out


def _damaged_files(project):
    """A gzipped checkpoint and a genome file, each with a node of an unknown activation."""
    pop = Population(pop_size=10, num_inputs=2, num_outputs=1, seed=3)
    Checkpoint.save(pop, project / "damaged.json.gz")
    data = json.loads(gzip.decompress((project / "damaged.json.gz").read_bytes()))
    data["population"]["genomes"][4]["nodes"][0][3] = "bogus"
    (project / "damaged.json.gz").write_bytes(gzip.compress(json.dumps(data).encode()))
    (project / "damaged-genome.json").write_text(json.dumps({"format": "neatify-genome", "version": 1,
                                                             "genome": data["population"]["genomes"][4]}))


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["show", "damaged.json.gz"], "damaged.json.gz: genome 4: node 2: unknown activation 'bogus'"),
    (["show", "damaged-genome.json"], "damaged-genome.json: node 2: unknown activation 'bogus'"),
    (["run", "run.toml", "--resume", "damaged.json.gz"], "damaged.json.gz: genome 4: node 2: unknown activation"),
])
def test_damaged_checkpoints_are_one_line_errors(project, args, message):
    _damaged_files(project)
    result = neatify(*args, cwd=project)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("neatify: error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unwritable_checkpoint_dir_fails_before_the_first_generation(project, capsys):
    (project / "ck").write_text("a file where the checkpoint directory should be")
    assert main(["run", "run.toml"]) == 1
    captured = capsys.readouterr()
    assert "ck: cannot make the checkpoint directory" in captured.err and "gen " not in captured.out


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["bogus"], "invalid choice"),
    (["run"], "required: config"),
    (["run", "missing.toml"], "No such file"),
    (["show", "run.toml"], "cannot read checkpoint"),
    (["run", "run.toml", "--generations", "x"], "invalid int value"),
    (["master", "run.toml", "--port", "0", "--tls-cert", "no.pem"], "master's TLS certificate 'no.pem'"),
    (["worker", "xorfit:fitness", "--tls-ca", "no.pem"], "cannot load the TLS CA certificate 'no.pem'"),
])
def test_bad_arguments_give_one_line_errors(project, args, message):
    result = neatify(*args, cwd=project)
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


@pytest.mark.parametrize("edit, message", [
    (("generations = 6", "generations = 6\nspeed = 2"), "unknown key(s): speed"),
    (("checkpoint_every", "checkpoint_evry"), "unknown key(s): checkpoint_evry (did you mean checkpoint_every?)"),
    (("num_inputs = 2\n", ""), "missing required key(s): num_inputs"),
    (("seed = 11", "seed = 'x'"), "seed must be int"),
    (('"xorfit:fitness"', '"xorfit:nothing"'), "module 'xorfit' has no attribute nothing"),
    (('"xorfit:fitness"', '"xorfit:fitnes"'), "has no attribute fitnes (did you mean fitness?)"),
    (('"xorfit:fitness"', '"xorfit"'), "expected module:function"),
    (("population_size = 40", "population_sise = 40"), "unknown config key(s): population_sise"),
    (("[evolution]", "[evolutoin]"), "unknown table(s): evolutoin"),
    (('"stats.json"', '"no/such/dir/stats.json"'), "No such file or directory"),
])
def test_bad_run_files_are_reported_by_name(project, capsys, edit, message):
    (project / "run.toml").write_text(RUN_FILE.replace(*edit))
    assert main(["run", "run.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neatify: error:") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_master_and_two_workers_as_subprocesses_match_the_library(project):
    master = subprocess.Popen([sys.executable, "-m", "neatify", "master", "run.toml", "--port", "0",
                               "--min-workers", "2", "--worker-wait-timeout", "60"],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = []
    try:
        first = master.stdout.readline()
        assert first.startswith("master listening on 127.0.0.1:"), first + master.stderr.read()
        port = first.strip().rsplit(":", 1)[1]
        workers = [subprocess.Popen([sys.executable, "-m", "neatify", "worker", "xorfit:fitness",
                                     "--master-port", port, "--worker-id", f"w{i}", "--capacity", "7",
                                     "--max-connect-attempts", "5"],
                                    cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for i in (1, 2)]
        out, err = master.communicate(timeout=90)
        assert master.returncode == 0, err
        assert out.splitlines()[-1].startswith("champion: genome")
        for worker in workers:
            worker_out, worker_err = worker.communicate(timeout=30)
            assert worker.returncode == 0, worker_err
            assert "master shut down" in worker_out
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    champion = Checkpoint.load_genome_json(project / "champion.json")
    assert champion.to_dict() == library_champion(project).to_dict()
    assert Checkpoint.load(project / "ck" / "checkpoint-5.json.gz").generation == 5


@pytest.mark.slow
def test_worker_started_first_finds_the_master_through_the_scheduler_file(project):
    worker = subprocess.Popen([sys.executable, "-m", "neatify", "worker", "xorfit:fitness", "--scheduler-file",
                               "scheduler.json", "--max-connect-attempts", "60"],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        master = neatify("master", "run.toml", "--port", "0", "--scheduler-file", "scheduler.json",
                         "--worker-wait-timeout", "60", cwd=project)
        assert master.returncode == 0, master.stderr
        worker_out, worker_err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0 and "master shut down" in worker_out, worker_err
    champion = Checkpoint.load_genome_json(project / "champion.json")
    assert champion.to_dict() == library_champion(project).to_dict()
    assert not (project / "scheduler.json").exists()


@pytest.mark.slow
def test_scheduler_file_replaces_the_master_address(project):
    result = neatify("worker", "xorfit:fitness", "--scheduler-file", "s.json", "--master-port", "5001", cwd=project)
    assert result.returncode == 1 and "give --master-host/--master-port, --master or --scheduler-file: one of them" \
        in result.stderr


@pytest.mark.slow
def test_worker_without_a_master_gives_up_with_one_line(project):
    result = neatify("worker", "xorfit:fitness", "--master-port", "1", "--max-connect-attempts", "1", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("neatify: error:") and "master at 127.0.0.1:1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def cli(procs, project, name, *args):
    """``neatify *args`` started in the project folder, its stdout and stderr in files of their own."""
    return procs.start(name, "-m", "neatify", *args, cwd=project, split=True)


@pytest.mark.slow
def test_worker_aimed_at_a_closed_port_says_so_within_seconds(procs, project):
    port = free_port()
    worker = cli(procs, project, "worker", "worker", "xorfit:fitness", "--master-port", str(port))
    wait_until(lambda: f"127.0.0.1:{port}" in procs.errors(worker), 5, "the worker to name the address")
    first = procs.errors(worker).splitlines()[0]
    assert "cannot reach master" in first and "retrying" in first and "until it gets in" in first
    assert worker.poll() is None, "it keeps retrying"


@pytest.mark.slow
def test_quiet_worker_prints_only_its_final_error(procs, project):
    worker = cli(procs, project, "worker", "worker", "xorfit:fitness", "--master-port", str(free_port()),
                 "--max-connect-attempts", "3", "-q")
    assert worker.wait(timeout=30) == 1
    err = procs.errors(worker)
    assert err.startswith("neatify: error:") and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_master_without_workers_says_where_it_waits_and_logs_one_line_per_generation(procs, project):
    """Output redirected to files, as under nohup or a batch system: the wait is named on stderr, then
    each generation is one line on stdout, and no file gets a progress bar's carriage returns."""
    master = cli(procs, project, "master", "master", "run.toml", "--port", "0", "--generations", "3")
    wait_until(lambda: "listening" in procs.log(master), 30, "the master to listen")
    address = procs.log(master).split()[-1]
    wait_until(lambda: f"waiting for 1 worker(s) to register on {address}" in procs.errors(master), 6,
               "the master to say it waits")
    worker = cli(procs, project, "worker", "worker", "xorfit:fitness", "--master-port", address.rsplit(":", 1)[1])
    assert master.wait(timeout=60) == 0, procs.errors(master)
    assert worker.wait(timeout=30) == 0, procs.errors(worker)
    lines = procs.log(master).splitlines()
    assert [line.split()[:2] for line in lines[1:-1]] == [["gen", str(g)] for g in range(3)]
    assert lines[-1].startswith("champion:") and len(lines) == 5
    assert len(procs.errors(master).splitlines()) == 1, "only the wait: nothing per generation"
    for proc in (master, worker):
        assert "\r" not in procs.log(proc) + procs.errors(proc)


def test_help_is_complete(capsys):
    for args in (["--help"], ["run", "--help"], ["show", "--help"], ["master", "--help"], ["worker", "--help"],
                 ["status", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("run", "show", "master", "worker", "--resume", "--generations", "--quiet", "--history",
                 "docs/cli.md", "--min-workers", "--checkpoint", "--auth-token", "--master-host", "MODULE:FUNCTION",
                 "--tls-cert", "--tls-key", "--tls-ca", "--tls-server-name", "--processes", "HOST:PORT", "--json",
                 "--scheduler-file", "--standby-of", "--heartbeat-interval", "HOST:PORT[,HOST:PORT...]"):
        assert word in out


@pytest.mark.slow
def test_version_and_python_dash_m(project):
    """``neatify --version`` and ``python -m neatify`` work; the version is written in one place."""
    result = subprocess.run([sys.executable, "-m", "neatify", "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"neatify {neatify_package.__version__}"
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] != "neatify"  # an unrelated package owns that name on PyPI
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "neatify.__version__"}


def test_install_hints_name_the_distribution():
    """Every ``pip install`` hint names the project's distribution, never PyPI's unrelated ``neatify``."""
    root = Path(__file__).parents[1]
    name = tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"]
    files = [root / "README.md", *root.glob("docs/*.md"), *root.glob("src/**/*.py"), *root.glob("examples/*.py")]
    hints = [(f.name, m) for f in files for m in re.findall(r"pip install \S*neatify\S*", f.read_text())]
    assert hints and all(name in hint for _, hint in hints), hints


@pytest.mark.parametrize("argv", [["-v", "run", "run.toml", "-q"], ["run", "run.toml", "-q", "-v"]])
def test_verbosity_flags_go_before_or_after_the_subcommand(project, capsys, argv):
    assert main([*argv, "--generations", "1"]) == 0
    assert "gen 0" not in capsys.readouterr().out  # -q: no progress line, wherever it was given


@pytest.mark.slow
def test_negative_generations_is_a_usage_error(project):
    result = neatify("run", "run.toml", "--generations", "-3", cwd=project)
    assert result.returncode == 2
    assert "--generations: must be at least 1, got -3" in result.stderr


def test_help_shows_defaults(capsys):
    for args in (["show", "--help"], ["worker", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
    out = " ".join(capsys.readouterr().out.split())
    assert "generations of history to list (default: 10)" in out
    assert "this worker asks for (default: 50)" in out


def test_master_host_defaults_to_loopback_everywhere():
    from neatify.cli.main import build_parser
    from neatify.distributed import DistributedConfig

    assert DistributedConfig().host == "127.0.0.1"
    assert build_parser().parse_args(["master", "x.toml"]).host == "127.0.0.1"
    example = (Path(__file__).parents[1] / "examples" / "distributed_xor_master.py").read_text()
    assert 'default="127.0.0.1"' in example and 'default="0.0.0.0"' not in example


SLOW_FITNESS_MODULE = FITNESS_MODULE + """
import time


def slow_fitness(genomes):
    open("evaluating", "w").close()  # the test waits for this before it sends its signal
    time.sleep(0.05)
    fitness(genomes)
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_pool_and_checkpoints(project, signum, status):
    """``neatify run`` with a 2-process pool, stopped by a signal: no process survives, a checkpoint resumes."""
    (project / "xorfit.py").write_text(SLOW_FITNESS_MODULE)
    (project / "run.toml").write_text(RUN_FILE.replace('"xorfit:fitness"', '"xorfit:slow_fitness"')
                                      .replace("generations = 6", "generations = 1000\nworkers = 2")
                                      .replace("checkpoint_every = 3", "checkpoint_every = 1000"))
    proc = subprocess.Popen([sys.executable, "-m", "neatify", "run", "run.toml", "-q"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (project / "evaluating").exists(), 60, "the pool to evaluate genomes")
        pool = children_of(proc.pid)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert len(pool) >= 2
    wait_until(lambda: not any(alive(pid) for pid in pool), 5, "the pool processes to end")
    saved = list((project / "ck").iterdir())
    assert len(saved) == 1 and Checkpoint.load(saved[0]).generation >= 0


def test_run_file_may_name_an_activation_its_fitness_module_registers(project):
    (project / "softsignfit.py").write_text(FITNESS_MODULE + """
from neatify.activations import register_activation

register_activation("cli_softsign", lambda x: x / (1.0 + abs(x)))
""")  # a module name of its own: other tests leave xorfit in sys.modules
    (project / "run.toml").write_text(RUN_FILE.replace('"xorfit:fitness"', '"softsignfit:fitness"').replace(
        "[evolution]", '[evolution]\nactivation_default = "cli_softsign"'))
    assert main(["run", "run.toml", "-q", "--generations", "1"]) == 0
    champion = Checkpoint.load_genome_json(project / "champion.json")
    assert {node.activation for node in champion.nodes.values()} == {"cli_softsign"}


@pytest.mark.parametrize("masters, problem", [
    ("host", "expected HOST:PORT, got 'host'"),
    (":5000", "expected HOST:PORT, got ':5000'"),
    ("host:0", "port must be in 1..65535, got 'host:0'"),
    ("a:1,,b:2", "an empty address in 'a:1,,b:2'"),
])
def test_a_bad_master_list_is_a_usage_error_naming_it(capsys, masters, problem):
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", "xorfit:fitness", "--master", masters])
    assert exit_info.value.code == 2 and f"argument --master: {problem}" in capsys.readouterr().err


NEAT_PYTHON_STYLE = Path(__file__).with_name("neat_python_style.py").read_text()
"""Fitness functions as a user coming from neat-python writes them, saved in the project folder as npstyle.py."""

WRITE_INSTEAD = "NEATify calls fitness_fn(genomes) with a list of Genome objects; write\n    def fitness(genomes):"


@pytest.mark.parametrize("workers", [1, 2])
def test_run_tells_a_neat_python_fitness_function_what_to_write(project, capsys, workers):
    """(genomes, config) is refused with the fix, in one error and no traceback, serial or before the pool starts."""
    (project / "npstyle.py").write_text(NEAT_PYTHON_STYLE)
    (project / "run.toml").write_text(RUN_FILE.replace('"xorfit:fitness"', '"npstyle:eval_genomes"')
                                      .replace("generations = 6", f"generations = 6\nworkers = {workers}"))
    assert main(["run", "run.toml", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neatify: error: fitness function eval_genomes(genomes, config) cannot be called")
    assert WRITE_INSTEAD in err and "Traceback" not in err


def test_worker_tells_a_neat_python_fitness_function_what_to_write_before_connecting(project, capsys):
    (project / "npstyle.py").write_text(NEAT_PYTHON_STYLE)
    assert main(["worker", "npstyle:eval_genomes", "--master-port", "1", "--max-connect-attempts", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neatify: error: fitness function eval_genomes") and WRITE_INSTEAD in err
    assert "master" not in err


def test_worker_suggests_the_fitness_function_meant(project, capsys):
    assert main(["worker", "xorfit:fitnes"]) == 1
    assert "module 'xorfit' has no attribute fitnes (did you mean fitness?)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("function, message", [
    ("unpacking", "the fitness function unpacks (genome_id, genome) pairs, as neat-python's do."),
    ("failing", "ValueError: fitness exploded"),
])
def test_pool_errors_are_one_traceback_and_nothing_else(project, function, message):
    """Through the process pool: the genome's own traceback (not chained to the batch's), the hint for a
    neat-python habit, and no stray thread exception (Python < 3.12's pool tripping over cancelled batches)."""
    (project / "npstyle.py").write_text(NEAT_PYTHON_STYLE)
    (project / "run.toml").write_text(RUN_FILE.replace('"xorfit:fitness"', f'"npstyle:{function}"')
                                      .replace("generations = 6", "generations = 6\nworkers = 2"))
    result = neatify("run", "run.toml", "-q", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("neatify: error: fitness function failed on a pool worker process for genome")
    assert message in result.stderr
    assert result.stderr.count("Traceback") == 1 and "During handling" not in result.stderr
    assert "Exception in thread" not in result.stderr and "InvalidStateError" not in result.stderr


def test_a_run_ending_between_checkpoints_saves_its_last_generation(project, capsys):
    (project / "run.toml").write_text(RUN_FILE.replace("generations = 6", "generations = 4"))
    assert main(["run", "run.toml", "-q"]) == 0
    assert sorted(p.name for p in (project / "ck").iterdir()) == ["checkpoint-2.json.gz", "checkpoint-3.json.gz"]
    assert Checkpoint.load(project / "ck" / "checkpoint-3.json.gz").generation == 3


@pytest.mark.slow
def test_master_giving_up_on_workers_names_the_flag(project):
    result = neatify("master", "run.toml", "--port", "0", "--worker-wait-timeout", "0.2", "-q", cwd=project)
    assert result.returncode == 1
    assert "start workers or raise --worker-wait-timeout" in result.stderr, result.stderr
