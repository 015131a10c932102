"""The one error of the configuration layer, and the "did you mean" its messages (and the CLI's) share."""

import difflib


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


def with_suggestion(key: str, known: list[str]) -> str:
    """``key``, followed by the closest known key when one is close: ``popsize (did you mean population_size?)``."""
    close = difflib.get_close_matches(key, known, n=1)
    return f"{key} (did you mean {close[0]}?)" if close else key
