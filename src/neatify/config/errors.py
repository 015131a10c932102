"""The one error of the configuration layer."""


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""
