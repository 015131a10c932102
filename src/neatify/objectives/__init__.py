"""Selection beyond one fitness number: behaviours, novelty, several objectives, an archive of elites.

``novelty(behaviours, archive, k)`` and ``NoveltyArchive`` for a loop of one's own; ``pareto_ranks``,
``crowding_distances`` and ``pareto_scores`` (NSGA-II); ``EliteArchive`` (MAP-Elites); ``Selection``, the
signal a ``Population`` selects on as its config says (docs/usage.md, "Beyond one fitness number").
"""

from neatify.objectives.elites import Elite, EliteArchive
from neatify.objectives.novelty import NoveltyArchive, novelty
from neatify.objectives.pareto import crowding_distances, pareto_ranks, pareto_scores
from neatify.objectives.selection import Selection, blend_scores

__all__ = ["Elite", "EliteArchive", "NoveltyArchive", "Selection", "blend_scores", "crowding_distances", "novelty",
           "pareto_ranks", "pareto_scores"]
