"""The sans-IO cores: master, worker and standby as state machines fed bytes and a clock, answering with actions.
They never touch a socket, a thread or the time of day (an import-linter contract keeps it so).

``actions`` (``Send``, ``Close``) and ``events`` (``Registered``, ``Task``, ``Shutdown``, ``Ended``...) are the one
vocabulary of all three; ``_state`` names a connection's states and the moves between them. ``worker`` and
``standby`` are one core each; the master's is ``master`` (routing by state) over its parts: ``peers`` (its
connections), ``registration``, ``fencing`` (epochs and the standby), ``liveness`` and ``dispatch``, which keeps
one generation's books in ``scheduler``.
"""
