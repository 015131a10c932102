"""The I/O shells around the sans-IO cores: the asyncio master, the blocking worker and standby, TLS,
``neatify status``, the worker supervisor and the scheduler file."""
