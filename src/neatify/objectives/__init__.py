"""Selection beyond one fitness number: behaviours, novelty, several objectives, an archive of elites."""
