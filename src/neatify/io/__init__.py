"""Reading and writing runs: checkpoints (plain-data JSON), the plain-data schema checks they share with
the wire, and neat-python config import."""
