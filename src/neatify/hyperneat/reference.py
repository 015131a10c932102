"""HyperNEAT decoding the plain way, one genome and one connection at a time, as the 2009 paper's
pseudocode reads: for each pair of nodes in connected layers, query the CPPN with their coordinates;
if the output is expressed, add the connection with the scaled weight. The batched decoder
(``neatify.hyperneat.decode``) must give the same networks; the differential tests hold it to that.
"""

from __future__ import annotations

import math

from neatify.genome.genome import Genome
from neatify.hyperneat.cppn import cppn_query
from neatify.hyperneat.decode import HyperNEAT
from neatify.network.network import Network


def expressed_weight(outputs: list[float], hyperneat: HyperNEAT) -> float | None:
    """The connection weight a CPPN's outputs give, or None when the connection is not expressed."""
    o = outputs[0]
    if hyperneat.leo:
        return max(-1.0, min(1.0, o)) * hyperneat.max_weight if outputs[1] > 0.0 else None
    if abs(o) <= hyperneat.threshold:
        return None
    scaled = (min(abs(o), 1.0) - hyperneat.threshold) / (1.0 - hyperneat.threshold) * hyperneat.max_weight
    return math.copysign(scaled, o)


def reference_connections(genome: Genome, hyperneat: HyperNEAT) -> dict[tuple[int, int], float]:
    """``{(source id, target id): weight}`` of the phenotype of CPPN ``genome``, capped to the strongest
    ``max_connections`` (ties: the earlier pair)."""
    cppn = Network(genome)
    substrate = hyperneat.substrate
    connections: dict[tuple[int, int], float] = {}
    layers, ids = substrate.layers(), substrate.layer_ids()
    for k in range(len(layers) - 1):
        for source, source_xyz in zip(ids[k].tolist(), layers[k]):
            for target, target_xyz in zip(ids[k + 1].tolist(), layers[k + 1]):
                cppn.reset()
                inputs = cppn_query(source_xyz, target_xyz, hyperneat.deltas, hyperneat.distance)
                weight = expressed_weight(cppn.activate(inputs), hyperneat)
                if weight is not None:
                    connections[(source, target)] = weight
    limit = hyperneat.max_connections
    if limit is not None and len(connections) > limit:
        strongest = set(sorted(connections, key=lambda pair: -abs(connections[pair]))[:limit])  # a stable sort
        connections = {pair: weight for pair, weight in connections.items() if pair in strongest}
    return connections
