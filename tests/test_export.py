"""TorchScript and ONNX export: reloaded networks compute what NeatModule computes, any batch size."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from neatify import ConnectionGene, EvolutionConfig, NeatModule, Population
from neatify.nn.export import export_onnx, export_torchscript


@pytest.fixture(scope="module")
def genome():
    config = EvolutionConfig(population_size=20, prob_add_node=0.5, prob_add_connection=0.5,
                             activation_options=["tanh", "relu", "neat_sigmoid"], prob_mutate_activation=0.3)
    pop = Population(num_inputs=3, num_outputs=2, config=config, seed=1)
    pop.run(lambda gs: [setattr(g, "fitness", float(sum(g.size()))) for g in gs], 6)
    best = pop.best_genome
    assert best.size()[0] >= 2 and not best.is_recurrent()
    return best


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_torchscript_roundtrip(genome, tmp_path):
    module = NeatModule(genome)
    export_torchscript(module, tmp_path / "net.pt")
    loaded = torch.jit.load(str(tmp_path / "net.pt"))
    for batch in (1, 7):
        x = torch.randn(batch, 3)
        torch.testing.assert_close(loaded(x), module(x))


def test_onnx_roundtrip_with_dynamic_batch(genome, tmp_path):
    import onnxruntime

    module = NeatModule(genome)
    export_onnx(genome, tmp_path / "net.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    for batch in (1, 11):
        x = torch.randn(batch, 3)
        (out,) = session.run(["output"], {"input": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(out), module(x))
    assert module(torch.zeros(4, 3)).shape == (4, 2)  # exporting left the original module usable


def test_recurrent_networks_are_refused(genome, tmp_path):
    looped = genome.copy(genome.id)
    out = looped.output_ids[0]
    looped.connections[10**6] = ConnectionGene(10**6, out, out, 0.5, True)
    with pytest.raises(ValueError, match="recurrent"):
        export_torchscript(looped, tmp_path / "x.pt")


def test_other_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="NeatModule or a Genome"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")


@pytest.mark.slow
def test_onnx_export_writes_one_file_and_says_nothing(tmp_path):
    pytest.importorskip("onnxruntime")
    script = ("from neatify import Population\nfrom neatify.nn.export import export_onnx\n"
              "export_onnx(Population(pop_size=2, seed=1).genomes[0], 'net.onnx')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""  # no "torchvision is not installed" lines
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # no empty net.onnx.data beside it
