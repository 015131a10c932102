"""Gymnasium environments evaluated for the whole population at once (the ``gym`` extra)."""
