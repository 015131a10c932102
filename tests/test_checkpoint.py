import gzip
import json
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from neatify import Checkpoint, EvolutionConfig, Population
from neatify.io.checkpoint import CheckpointError
from neatify.reporting.reporters import CheckpointReporter
from test_population import fingerprint
from xor_task import xor_fitness


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_resume_continues_exactly_as_if_never_stopped(tmp_path, suffix):
    config = EvolutionConfig(prob_add_node=0.2, target_species=5)
    straight = Population(pop_size=60, num_inputs=2, num_outputs=1, config=config, seed=21)
    stopped = Population(pop_size=60, num_inputs=2, num_outputs=1, config=config, seed=21)
    for _ in range(4):
        straight.run_generation(xor_fitness)
        stopped.run_generation(xor_fitness)
    path = tmp_path / f"run{suffix}"
    Checkpoint.save(stopped, path)
    if suffix == ".json":
        assert json.loads(path.read_text())["format"] == "neatify-checkpoint"
    resumed = Checkpoint.load(path)
    for _ in range(5):
        straight.run_generation(xor_fitness)
        resumed.run_generation(xor_fitness)
        assert fingerprint(resumed) == fingerprint(straight)
    assert resumed.state_dict() == straight.state_dict()
    ids = {g.id for g in resumed.genomes}
    assert min(ids) >= 60 * 4, "no genome id reused after resume"


def test_checkpoint_before_first_evaluation_and_after_failure(tmp_path):
    pop = Population(pop_size=30, num_inputs=2, num_outputs=1, seed=2)
    Checkpoint.save(pop, tmp_path / "fresh.json")
    resumed = Checkpoint.load(tmp_path / "fresh.json")
    pop.run_generation(xor_fitness)
    resumed.run_generation(xor_fitness)
    assert fingerprint(pop) == fingerprint(resumed)


def test_a_checkpoint_reporter_with_a_filename_keeps_one_file_of_the_last_generation_and_its_epoch(tmp_path):
    """How a distributed master checkpoints: one file, replaced each generation, holding the master's epoch."""
    reporter = CheckpointReporter(tmp_path, filename="run.json")
    pop = Population(pop_size=30, num_inputs=2, num_outputs=1, seed=2)
    pop.add_reporter(reporter)
    pop.run(xor_fitness, generations=3)
    assert list(tmp_path.iterdir()) == [tmp_path / "run.json"] and reporter.last_path == tmp_path / "run.json"
    assert Checkpoint.read_run(reporter.last_path) == (pop.state_dict(), None)
    reporter.save_state(pop.state_dict(), pop.generation, epoch=3)
    assert Checkpoint.read_run(tmp_path / "run.json")[1] == 3
    with pytest.raises(CheckpointError, match="cannot write a checkpoint there"):  # made by no one but the user
        CheckpointReporter(tmp_path / "missing", filename="run.json")


def test_genome_export_round_trip(tmp_path):
    pop = Population(pop_size=30, num_inputs=2, num_outputs=1, seed=2)
    champion = pop.run(xor_fitness, generations=3)
    Checkpoint.export_genome_json(champion, tmp_path / "champ.json")
    loaded = Checkpoint.load_genome_json(tmp_path / "champ.json")
    assert loaded.to_dict() == champion.to_dict()


def test_bad_checkpoint_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Checkpoint.load(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        Checkpoint.load(tmp_path / "junk.json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a neatify-checkpoint"):
        Checkpoint.load(tmp_path / "other.json")


RICH = EvolutionConfig(prob_add_node=0.3, prob_add_connection=0.5, allow_recurrent=True, prob_delete_node=0.05,
                       prob_toggle_enable=0.02, prob_mutate_activation=0.1,
                       activation_options=["neat_sigmoid", "tanh", "relu"], target_species=3, population_stagnation=2)


@pytest.fixture(scope="module")
def saved_run():
    """The file contents of a checkpoint of a real run with hidden nodes and recurrent connections."""
    pop = Population(pop_size=24, num_inputs=2, num_outputs=1, config=RICH, seed=5)
    for _ in range(6):
        pop.run_generation(xor_fitness)
    assert any(g.is_recurrent() for g in pop.genomes) and any(g.size()[0] for g in pop.genomes)
    return {"format": "neatify-checkpoint", "version": 1, "population": pop.state_dict()}


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_recurrent_run_and_a_checkpoint_from_before_population_stagnation_load_exactly(tmp_path, saved_run, suffix):
    old = json.loads(json.dumps(saved_run))
    old["population"]["config"]["population_stagnation"] = 0
    reference = Checkpoint.load(_write(tmp_path / f"new{suffix}", old))
    del old["population"]["config"]["population_stagnation"]  # a checkpoint written before the key existed
    resumed = Checkpoint.load(_write(tmp_path / f"old{suffix}", old))
    assert resumed.state_dict() == reference.state_dict()
    for _ in range(2):
        reference.run_generation(xor_fitness)
        resumed.run_generation(xor_fitness)
    assert resumed.state_dict() == reference.state_dict()


def _write(path, data, raw=None):
    """Write ``data`` as a checkpoint at ``path``, or the file contents ``raw`` when given."""
    if raw is None:
        raw = json.dumps(data).encode()
        raw = gzip.compress(raw) if path.suffix == ".gz" else raw
    path.write_bytes(raw)
    return path


def _state(data):
    return data["population"]


def _genome(data, index=0):
    return data["population"]["genomes"][index]


def _hidden_genome(data):
    return next(g for g in data["population"]["genomes"] if any(n[1] == "hidden" for n in g["nodes"]))


def _set_rng(data):
    _state(data)["rng"][1] = _state(data)["rng"][1][:600]


def _swap_activation(data):
    genome = _genome(data)
    genome["nodes"][0][3] = "os.system"
    return f"genome {genome['id']}: node {genome['nodes'][0][0]}: unknown activation 'os.system'"


def _dangling_connection(data):
    genome = _genome(data)
    genome["connections"][0][2] = 99
    conn = genome["connections"][0]
    return f"genome {genome['id']}: connection {conn[0]} joins a node that does not exist ({conn[1]} -> 99)"


def _drop_key(data):
    del _genome(data)["nodes"]
    return f"genome {_genome(data)['id']}: Object missing required field `nodes`"


def _wider_genome(data):
    wider = Population(pop_size=5, num_inputs=3, num_outputs=1, seed=1).genomes[0].to_dict()
    _state(data)["genomes"][0] = {**wider, "id": _genome(data)["id"], "fitness": 1.0}
    return f"genome {_genome(data)['id']}: has 3 inputs and 1 outputs, the population 2 and 1"


def _foreign_member(data):
    species = _state(data)["species"][0]
    species["members"].append(123456)
    return f"species {species['id']}: member 123456 is not a genome of the population"


def _twice(data):
    genome = _genome(data, 1)
    genome["id"] = _genome(data)["id"]
    return f"genome {genome['id']}: id appears twice"


def _homeless(data):
    species = _state(data)["species"][0]
    homeless = species["members"].pop()
    if not species["members"]:
        _state(data)["species"].pop(0)
    return f"genome {homeless} is in no species"


def _edit(path, value, message):
    """A case that sets the value at ``path`` (keys and indexes under the file's top level)."""
    def edit(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return message
    return edit


def _bytes(transform, message):
    return lambda data: (transform(json.dumps(data).encode()), message)


P = "population"
DAMAGE = {
    "truncated gz": (".json.gz", lambda data: (gzip.compress(json.dumps(data).encode())[:-40], "truncated or corrupt "
                                               "gzip data")),
    "plain text named .gz": (".json.gz", _bytes(lambda raw: raw, "truncated or corrupt gzip data")),
    "truncated json": (".json", _bytes(lambda raw: raw[: len(raw) // 2], "not valid JSON")),
    "not json": (".json", _bytes(lambda raw: b"generation = 3\n", "not valid JSON")),
    "not utf-8": (".json", _bytes(lambda raw: b'{"format": "\xff"}', "not UTF-8 text")),
    "NaN weight": (".json", _bytes(lambda raw: raw.replace(b'"evaluations": ', b'"evaluations": NaN, "x": ', 1),
                                   "NaN is not a number a checkpoint may hold")),
    "top level list": (".json", _bytes(lambda raw: b"[1, 2]", "top level is not an object")),
    "wrong format tag": (".json", _edit(["format"], "neat-python", "not a neatify-checkpoint version 1 file")),
    "wrong version": (".json.gz", _edit(["version"], 2, "not a neatify-checkpoint version 1 file")),
    "no population": (".json", _edit([P], None, "population: Expected `object`, got `null`")),
    "missing state key": (".json", lambda data: (_state(data).pop("tracker"), "population: Object missing required field `tracker`")[1]),
    "generation not int": (".json", _edit([P, "generation"], "x",
                                          "population: Expected `int`, got `str` - at `$.generation`")),
    "threshold a string": (".json", _edit([P, "compatibility_threshold"], "3.0",
                                          "population: Expected `float`, got `str` - at `$.compatibility_threshold`")),
    "evaluated a number": (".json", _edit([P, "evaluated"], 1, "population: Expected `bool`, got `int` - at `$.evaluated`")),
    "no genomes": (".json", _edit([P, "genomes"], [], "population: Expected `array` of length >= 1 - at `$.genomes`")),
    "short rng state": (".json", lambda data: (_set_rng(data), "population: Expected `array` of length >= 625 - at `$.rng[1]`")[1]),
    "rng version": (".json", _edit([P, "rng", 0], 2, "population: Invalid enum value 2 - at `$.rng[0]`")),
    "unknown config key": (".json.gz", _edit([P, "config", "population_sise"], 40,
                                             "population.config: unknown config key(s): population_sise")),
    "bad config value": (".json", _edit([P, "config", "prob_add_node"], 2.0,
                                        "population.config: prob_add_node is a probability")),
    "tracker splits": (".json", _edit([P, "tracker", "splits"], [[1]], "population: Expected `array` of length 2, got 1 - at `$.tracker.splits[0]`")),
    "tracker behind genomes": (".json", _edit([P, "tracker", "next_innovation"], 1,
                                              "is not below population.tracker.next_innovation 1")),
    "genome missing a key": (".json", _drop_key),
    "unknown activation": (".json.gz", _swap_activation),
    "connection to a missing node": (".json.gz", _dangling_connection),
    "genome of another size": (".json", _wider_genome),
    "evaluated genome without fitness": (".json", lambda data: (_genome(data).update(fitness=None),
                                                                "no fitness, yet population.evaluated is true")[1]),
    "weight a string": (".json", lambda data: (_hidden_genome(data)["connections"][0].__setitem__(3, "1.0"),
                                               "Expected `float`, got `str` - at `$.connections[0][3]`")[1]),
    "species member not a genome": (".json", _foreign_member),
    "duplicate genome id": (".json", _twice),
    "genome in no species": (".json", _homeless),
    "species field": (".json", _edit([P, "species", 0, "staleness"], -1,
                                     "population: Expected `int` >= 0 - at `$.species[0].staleness`")),
    "best genome without fitness": (".json", _edit([P, "best_genome", "fitness"], None,
                                                   "population.best_genome: has no fitness")),
    "history row": (".json", lambda data: (_state(data)["history"][0].pop("evaluations"),
                                           "population: Object missing required field `evaluations` - at `$.history[0]`")[1]),
    "history value": (".json", _edit([P, "history", 1, "mean_fitness"], [1],
                                     "population: Expected `float`, got `array` - at `$.history[1].mean_fitness`")),
    "generation context a list": (".json", _edit([P, "generation_context"], [1.0],
                                                 "population: Expected `object | null`, got `array` - at "
                                                 "`$.generation_context`")),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_every_damaged_checkpoint_is_a_checkpoint_error_naming_file_and_problem(tmp_path, saved_run, case):
    suffix, damage = DAMAGE[case]
    data = json.loads(json.dumps(saved_run))
    outcome = damage(data)
    raw, message = outcome if isinstance(outcome, tuple) else (None, outcome)
    path = _write(tmp_path / f"run{suffix}", data, raw)
    for load in (Checkpoint.load, Checkpoint.read_state, Checkpoint.load_file):
        with pytest.raises(CheckpointError) as caught:
            load(path)
        assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value), case


JUNK = [None, "x", -1, 0, 2.5, 10**30, True, [], {}, [0, 1], float("inf")]
"""What a damaged file may hold where a value was."""


def test_randomly_damaged_checkpoints_load_and_run_or_raise_checkpoint_error(tmp_path, saved_run):
    """Edits of a real checkpoint drawn by Hypothesis (a failure shrinks to the simplest edit): each loads and runs
    on, or is refused as a CheckpointError."""
    path = tmp_path / "fuzz.json"
    outcomes: Counter[str] = Counter()

    @settings(max_examples=150)
    @given(st.data())
    def loads_and_runs_or_is_refused(data: st.DataObject) -> None:
        tree = json.loads(json.dumps(saved_run))
        parent, key = _drawn_spot(data, tree["population"])
        if isinstance(parent, dict) and data.draw(st.booleans(), label="delete it"):
            del parent[key]
        else:
            parent[key] = data.draw(st.sampled_from(JUNK), label="junk in its place")
        path.write_text(json.dumps(tree))
        try:
            population = Checkpoint.load(path)
        except CheckpointError as exc:
            assert str(exc).startswith(f"{path}: ")
            outcomes["refused"] += 1
            return
        population.run_generation(xor_fitness)
        outcomes["loaded"] += 1

    loads_and_runs_or_is_refused()
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 3, outcomes  # both ends were met


def _drawn_spot(data: st.DataObject, tree: dict) -> tuple[dict | list, str | int]:
    """A (container, key) inside a JSON tree, descending four times in five while there is something below."""
    parent, key = tree, data.draw(st.sampled_from(list(tree)), label="key")
    while isinstance(parent[key], (dict, list)) and parent[key] and data.draw(
            st.sampled_from([False, True, True, True, True]), label="descend"):
        parent = parent[key]
        key = data.draw(st.sampled_from(list(parent)) if isinstance(parent, dict) else
                        st.integers(0, len(parent) - 1), label="key")
    return parent, key


def test_damaged_genome_file_names_file_and_problem(tmp_path):
    genome = Population(pop_size=5, num_inputs=2, num_outputs=1, seed=1).genomes[0]
    path = tmp_path / "champ.json"
    Checkpoint.export_genome_json(genome, path)
    data = json.loads(path.read_text())
    data["genome"]["nodes"][0][3] = "no_such_activation"
    path.write_text(json.dumps(data))
    for load in (Checkpoint.load_genome_json, Checkpoint.load_file):
        with pytest.raises(CheckpointError, match="champ.json: node 2: unknown activation 'no_such_activation'"):
            load(path)


@pytest.mark.parametrize("where", ["missing/run.json", "."])
def test_check_writable_refuses_missing_directory_and_directory(tmp_path, where):
    with pytest.raises(CheckpointError, match="cannot write a checkpoint there"):
        Checkpoint.check_writable(tmp_path / where)
    Checkpoint.check_writable(tmp_path / "run.json")
    assert list(tmp_path.iterdir()) == []
