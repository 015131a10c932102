import pytest

from neatify import ConfigError, EvolutionConfig


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
])
def test_bad_values_are_refused_by_name(key, value, words):
    with pytest.raises(ConfigError, match=words):
        EvolutionConfig(**{key: value})


def test_unknown_key_is_refused_by_name():
    with pytest.raises(ConfigError, match="unknown config key.*prob_add_nodes"):
        EvolutionConfig.from_dict({"prob_add_nodes": 0.1})


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
