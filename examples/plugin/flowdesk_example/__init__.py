"""Example Flowdesk plugins, one module per plugin, each published as an entry point.

- :mod:`flowdesk_example.order_numbers`: the ``order_numbers`` processor (``flowdesk.processors``);
- :mod:`flowdesk_example.canned`: the ``canned`` AI provider (``flowdesk.ai``);
- :mod:`flowdesk_example.outbox`: the ``outbox`` channel (``flowdesk.channels``).

Nothing is imported here: Flowdesk loads each module through its entry point,
only when a flow or a worker needs it.
"""
