"""The sans-IO cores: master, worker and standby as state machines fed bytes and a clock, answering with actions.
They never touch a socket, a thread or the time of day (an import-linter contract keeps it so)."""
