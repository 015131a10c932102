import math
import random

import pytest
import torch
from hypothesis import given, settings

from helpers import make_genome
from strategies import genomes
from neatify import EvolutionConfig, Genome, NeatModule, Network
from neatify.genome.innovation import InnovationTracker
from neatify.network.network import NetworkLayout


def sig(x):
    return 1.0 / (1.0 + math.exp(-4.9 * x))


def test_feed_forward_against_hand_computation():
    # in0, in1 -> h3 (tanh) -> out2 (neat_sigmoid), plus in0 -> out2 directly; one disabled edge
    genome = make_genome(2, 1, [(2, 0.1, "neat_sigmoid"), (3, -0.2, "tanh")],
                         [(0, 0, 2, 0.7, True), (1, 1, 2, 5.0, False), (2, 0, 3, 1.5, True), (3, 1, 3, -0.5, True),
                          (4, 3, 2, 2.0, True)])
    x = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-2.0, 3.0]])
    out = NeatModule(genome)(x)
    assert out.shape == (3, 1)
    for row, value in zip(x.tolist(), out[:, 0].tolist()):
        h = math.tanh(-0.2 + 1.5 * row[0] - 0.5 * row[1])
        assert value == pytest.approx(sig(0.1 + 0.7 * row[0] + 2.0 * h), abs=1e-6)


def test_recurrent_chain_with_self_loop_against_hand_computation():
    # in0 -> h2 -> out1, with a self-loop on h2: the chain is feed-forward within a step,
    # the loop carries h2's previous value.
    genome = make_genome(1, 1, [(1, 0.0, "identity"), (2, 0.5, "tanh")],
                         [(0, 0, 2, 1.0, True), (1, 2, 1, 2.0, True), (2, 2, 2, 0.8, True)])
    module = NeatModule(genome)
    assert module.is_recurrent
    xs = [0.3, -1.0, 0.0, 2.0]
    h_prev, expected = 0.0, []
    for x in xs:
        h_prev = math.tanh(0.5 + x + 0.8 * h_prev)
        expected.append(2.0 * h_prev)
    got = [module(torch.tensor([[x]])).item() for x in xs]
    assert got == pytest.approx(expected, abs=1e-6)
    module.reset()
    assert module(torch.tensor([[xs[0]]])).item() == pytest.approx(expected[0], abs=1e-6)
    with pytest.raises(ValueError, match="batch size changed"):
        module(torch.zeros(2, 1))


def test_recurrent_cycle_through_output():
    # out1 feeds h2 which feeds out1: one step delay on the back edge
    genome = make_genome(1, 1, [(1, 0.0, "identity"), (2, 0.0, "identity")],
                         [(0, 0, 1, 1.0, True), (1, 1, 2, 1.0, True), (2, 2, 1, 0.5, True)])
    module, net = NeatModule(genome), Network(genome)
    outs = [module(torch.tensor([[1.0]])).item() for _ in range(4)]
    assert outs == [net.activate([1.0])[0] for _ in range(4)]
    assert outs[0] == 1.0 and outs[-1] != 1.0


def test_synchronous_steps_cross_one_connection_each():
    # in0 -> h2 -> out1 and in0 -> out1, identity nodes: the direct edge reads the current input,
    # the path through h2 reads h2's value from the previous step (neat-python's RecurrentNetwork).
    genome = make_genome(1, 1, [(1, 0.1, "identity"), (2, 0.5, "identity")],
                         [(0, 0, 2, 2.0, True), (1, 2, 1, 3.0, True), (2, 0, 1, -1.0, True)])
    xs = [1.0, -2.0, 0.5, 4.0]
    h_prev, expected = 0.0, []
    for x in xs:
        expected.append(0.1 - x + 3.0 * h_prev)
        h_prev = 0.5 + 2.0 * x
    module, net = NeatModule(genome, synchronous=True, dtype=torch.float64), Network(genome, synchronous=True)
    assert module.is_recurrent and not NeatModule(genome).is_recurrent
    assert [module(torch.tensor([[x]], dtype=torch.float64)).item() for x in xs] == pytest.approx(expected)
    assert [net.activate([x])[0] for x in xs] == pytest.approx(expected)
    module.reset()
    net.reset()
    assert module(torch.tensor([[xs[0]]], dtype=torch.float64)).item() == net.activate([xs[0]])[0] == \
        pytest.approx(expected[0])
    layered = NeatModule(genome)  # the same genome layered: the whole chain within one call
    assert layered(torch.tensor([[1.0]])).item() == pytest.approx(0.1 - 1.0 + 3.0 * 2.5)


def test_a_connection_into_an_input_is_ignored():
    # in0 -> h2 -> out1, and out1 -> in0 (a hand-made gene into an input): the input keeps the value
    # given, so the gene changes nothing, synchronous or not (it once fed h2 in the synchronous module).
    genome = make_genome(1, 1, [(1, 0.0, "identity"), (2, 0.0, "identity")],
                         [(0, 0, 2, 1.0, True), (1, 2, 1, 1.0, True), (2, 1, 0, 5.0, True)])
    assert all(edge.dst >= 1 for edge in NetworkLayout.from_genome(genome, synchronous=True).edges)
    for synchronous in (False, True):
        module, net = NeatModule(genome, synchronous=synchronous), Network(genome, synchronous)
        outs = [module(torch.tensor([[1.0]])).item() for _ in range(5)]
        assert outs == [net.activate([1.0])[0] for _ in range(5)] == [0.0 if synchronous else 1.0] + [1.0] * 4


def test_unconnected_output_is_its_activated_bias():
    genome = make_genome(2, 2, [(2, 0.3, "identity"), (3, -0.4, "relu")], [(0, 0, 2, 1.0, True)])
    out = NeatModule(genome)(torch.tensor([[2.0, 7.0]]))
    assert out[0].tolist() == pytest.approx([2.3, 0.0])


ACTIVATIONS = ("tanh", "relu", "sigmoid", "sin", "gauss", "abs", "clamped", "identity", "neat_sigmoid")


def random_genomes(n, allow_recurrent, seed):
    config = EvolutionConfig(prob_add_node=0.4, prob_add_connection=0.6, allow_recurrent=allow_recurrent,
                             prob_mutate_activation=0.5, prob_toggle_enable=0.05, activation_options=list(ACTIVATIONS))
    rng = random.Random(seed)
    tracker = InnovationTracker(0, 5)
    genomes = []
    for i in range(n):
        g = Genome.initial(i, 3, 2, config, rng, tracker)
        for _ in range(rng.randrange(1, 25)):
            g.mutate(config, rng, tracker)
        genomes.append(g)
    return genomes


@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize("allow_recurrent", [False, True])
def test_module_matches_plain_python_network(allow_recurrent, synchronous):
    """On Hypothesis's genomes (a failure shrinks to a smallest one), cycles only where ``allow_recurrent``."""
    rows = [[random.Random(i).uniform(-2, 2) for _ in range(3)] for i in range(5)]
    recurrent_seen = []

    @settings(max_examples=20)
    @given(genomes(activations=ACTIVATIONS, cyclic=allow_recurrent))
    def runs_as_the_network(genome):
        module = NeatModule(genome, dtype=torch.float64, synchronous=synchronous)
        recurrent_seen.append(module.is_recurrent)
        nets = [Network(genome, synchronous) for _ in rows]  # one stateful runner per batch row
        for _ in range(3):  # several steps: recurrent state must agree too
            got = module(torch.tensor(rows, dtype=torch.float64))
            want = torch.tensor([net.activate(row) for net, row in zip(nets, rows)], dtype=torch.float64)
            assert torch.allclose(got, want, atol=1e-9)

    runs_as_the_network()
    assert any(recurrent_seen) == (allow_recurrent or synchronous)


def test_wrong_input_shape_is_a_clear_error():
    module = NeatModule(random_genomes(1, False, 0)[0])
    with pytest.raises(ValueError, match=r"shape \(batch, 3\), got \(4, 2\)"):
        module(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="got \\(3,\\)"):
        module(torch.zeros(3))


def test_trainable_round_trip():
    torch.manual_seed(0)
    genome = make_genome(2, 1, [(2, 0.0, "identity"), (3, 0.0, "tanh")],
                         [(0, 0, 3, 0.5, True), (1, 1, 3, -0.5, True), (2, 3, 2, 1.0, True)])
    module = NeatModule(genome, trainable=True)
    assert {name for name, _ in module.named_parameters()} == {"weight", "bias"}
    x = torch.randn(64, 2)
    y = (0.8 * torch.tanh(x[:, :1] * 1.2 - x[:, 1:] * 0.3 + 0.1) + 0.2)
    optim = torch.optim.Adam(module.parameters(), lr=0.05)
    first = None
    for _ in range(300):
        optim.zero_grad()
        loss = torch.mean((module(x) - y) ** 2)
        first = loss.item() if first is None else first
        loss.backward()
        optim.step()
    assert loss.item() < first / 20
    module.update_genome_weights()
    assert genome.connections[0].weight != 0.5
    reloaded = NeatModule(genome)
    assert torch.allclose(reloaded(x), module(x), atol=1e-6)


def test_frozen_module_has_no_parameters_and_moves_device():
    module = NeatModule(random_genomes(1, False, 3)[0])
    assert list(module.parameters()) == []
    double = module.to(torch.float64)
    assert double(torch.zeros(2, 3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("recurrent", [False, True])
def test_cuda_matches_cpu(recurrent: bool):
    genome = next(g for g in random_genomes(20, recurrent, 4) if g.is_recurrent() == recurrent)
    steps = torch.randn(3, 8, 3)
    cpu, gpu = NeatModule(genome), NeatModule(genome, device="cuda")
    for x in steps:  # one step for feed-forward networks is like any other; recurrent ones carry state
        assert torch.allclose(cpu(x), gpu(x.cuda()).cpu(), atol=1e-5)
