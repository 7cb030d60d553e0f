"""People: the agents, supervisors, editors and admins who answer and run Flowdesk.

Below the server and beside the runtime: roles and what each may do
(:mod:`~engine.people.roles`), queue and presence settings
(:mod:`~engine.people.settings`), passwords, and the pure assignment policy.
Nothing here imports the server or Temporal.
"""
