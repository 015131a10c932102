from pathlib import Path

import pytest

from helpers import doc_snippet
from neatify import ConfigError, EvolutionConfig, Population
from neatify.config import auto_target_species
from xor_task import xor_fitness


def test_defaults_follow_the_paper():
    config = EvolutionConfig()
    assert (config.population_size, config.c1, config.c2, config.c3) == (150, 1.0, 1.0, 0.4)
    assert config.compatibility_threshold == 3.0
    assert config.prob_add_node == 0.05 and config.prob_add_connection == 0.5
    assert config.activation_default == "neat_sigmoid"


@pytest.mark.parametrize("key, value, words", [
    ("prob_add_node", -0.1, "prob_add_node"),
    ("prob_mutate_weight", 1.5, "prob_mutate_weight"),
    ("population_size", 0, "population_size"),
    ("activation_default", "swish", "unknown activation 'swish'"),
    ("activation_options", ["tanh", "nope"], "unknown activation 'nope'"),
    ("c3", -1.0, "c3"),
    ("elitism_count", 1.5, "elitism_count must be int"),
    ("allow_recurrent", "yes", "allow_recurrent must be bool"),
    ("weight_min_value", 50.0, "weight_min_value"),
    ("target_species", -1, "target_species must be a non-negative integer or 'auto', got -1"),
    ("target_species", "lots", "target_species must be a non-negative integer or 'auto', got 'lots'"),
    ("target_species", 2.5, "target_species must be a non-negative integer or 'auto'"),
    ("target_species", True, "target_species must be a non-negative integer or 'auto'"),
])
def test_bad_values_are_refused_by_name(key, value, words):
    with pytest.raises(ConfigError, match=words):
        EvolutionConfig(**{key: value})


def test_unknown_key_is_refused_by_name():
    with pytest.raises(ConfigError, match="unknown config key.*prob_add_nodes"):
        EvolutionConfig.from_dict({"prob_add_nodes": 0.1})


def test_auto_species_target_grows_slowly_with_the_population():
    assert EvolutionConfig().target_species == "auto"
    targets = {n: EvolutionConfig(population_size=n).species_target() for n in (150, 1_000, 10_000, 100_000, 10**8)}
    assert targets == {150: 10, 1_000: 14, 10_000: 18, 100_000: 23, 10**8: 30}
    assert [auto_target_species(n) for n in (1, 190, 191)] == [10, 10, 11]


def test_explicit_species_target_and_fixed_threshold_are_kept():
    assert EvolutionConfig(population_size=10_000, target_species=7).species_target() == 7
    assert EvolutionConfig(population_size=10_000, target_species=0).species_target() == 0


def test_auto_target_round_trips_through_toml_and_an_old_file_keeps_its_fixed_threshold(tmp_path):
    path = tmp_path / "neat.toml"
    EvolutionConfig().to_toml(path)
    assert 'target_species = "auto"' in path.read_text()
    assert EvolutionConfig.from_toml(path).species_target() == 10
    old = tmp_path / "old.toml"  # what to_toml wrote before 2026-11-29
    old.write_text("[evolution]\ntarget_species = 0\ncompatibility_threshold_step = 0.3\n")
    assert EvolutionConfig.from_toml(old).species_target() == 0


def test_int_is_accepted_for_float():
    assert EvolutionConfig(c1=2).c1 == 2.0


def test_toml_round_trip(tmp_path):
    config = EvolutionConfig(population_size=77, activation_options=["tanh", "relu"], allow_recurrent=True)
    path = tmp_path / "neat.toml"
    config.to_toml(path)
    assert "[evolution]" in path.read_text()
    assert EvolutionConfig.from_toml(path) == config


def test_toml_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[evolution]\nprob_add_node = -1.0\n")
    with pytest.raises(ConfigError, match="prob_add_node"):
        EvolutionConfig.from_toml(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("population_size = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        EvolutionConfig.from_toml(broken)


NEAT_PYTHON_INI = Path(__file__).resolve().parents[1] / "benchmarks" / "neat_python_config.ini"


def test_neat_python_xor_config_loads_names_what_it_cannot_map_and_solves_xor():
    with pytest.warns(UserWarning, match="not carried over") as warned:
        config = EvolutionConfig.from_neat_python(NEAT_PYTHON_INI)
    message = str(warned[0].message)
    for key in ("fitness_threshold = 1e9 (pass fitness_threshold= to Population.run())", "num_inputs = 2",
                "reset_on_extinction = False (no NEATify equivalent)"):
        assert key in message
    assert "aggregation" not in message and "response" not in message  # their values match NEATify's
    assert (config.population_size, config.prob_add_connection, config.prob_add_node) == (150, 0.05, 0.03)
    assert (config.c1, config.c2, config.c3, config.prob_mutate_bias) == (1.0, 1.0, 0.4, 0.7)
    assert (config.activation_default, config.allow_recurrent, config.elitism_count) == ("neat_sigmoid", False, 1)
    assert config.target_species == 0  # neat-python's threshold is fixed
    champion = Population(num_inputs=2, num_outputs=1, config=config, seed=3).run(xor_fitness, 300, 3.9)
    assert champion.fitness >= 3.9


def test_neat_python_keys_without_equivalent_are_named(tmp_path):
    ini = tmp_path / "config"
    ini.write_text("[DefaultGenome]\naggregation_default = product\nfeed_forward = False\n"
                   "initial_connection = unconnected\nactivation_options = sigmoid relu\n")
    with pytest.warns(UserWarning, match=r"aggregation_default = product \(no NEATify equivalent\)"):
        config = EvolutionConfig.from_neat_python(ini)
    assert config.allow_recurrent and config.initial_connection == "none"
    assert config.activation_options == ["neat_sigmoid", "relu"]
    ini.write_text("[DefaultGenome]\ninitial_connection = partial_nodirect 0.5\n")
    assert EvolutionConfig.from_neat_python(ini).initial_connection == "partial 0.5"
    ini.write_text("[DefaultGenome]\nactivation_default = cube\n")
    with pytest.raises(ConfigError, match=r"activation_default = cube: no NEATify equivalent of activation 'cube'"):
        EvolutionConfig.from_neat_python(ini)


def test_unknown_keys_get_a_did_you_mean():
    with pytest.raises(ConfigError, match=r"pop_size \(did you mean population_size\?\), zzz$"):
        EvolutionConfig.from_dict({"pop_size": 50, "zzz": 1})


def test_usage_doc_neat_python_snippet_runs_as_written(monkeypatch):
    monkeypatch.chdir(NEAT_PYTHON_INI.parents[1])
    namespace: dict = {}
    with pytest.warns(UserWarning, match="not carried over"):
        exec(doc_snippet("docs/usage.md", "EvolutionConfig.from_neat_python("), namespace)
    assert namespace["champion"].fitness >= 3.9


def test_setting_a_field_after_construction_is_validated():
    config = EvolutionConfig()
    config.prob_add_node = 0.2
    config.c1 = 2
    assert (config.prob_add_node, config.c1) == (0.2, 2.0) and isinstance(config.c1, float)
    with pytest.raises(ConfigError, match=r"prob_add_node is a probability and must be in \[0, 1\], got 2.0"):
        config.prob_add_node = 2.0
    assert config.prob_add_node == 0.2  # the old value stays
    with pytest.raises(ConfigError, match=r"unknown config key: pop_size \(did you mean population_size\?\)"):
        config.pop_size = 10
    with pytest.raises(ConfigError, match="unknown activation 'nope'"):
        config.activation_default = "nope"
