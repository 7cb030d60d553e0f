"""Roles and what each may do: one table, read by the route guard and by the people who write routes.

A route says which roles reach it (``opt={"roles": AGENT_ROLES}``); a route that says
nothing is for admins only, so a new route is closed until someone opens it. The
role x route test walks every route of the app against every role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    EDITOR = "editor"


ROLES: tuple[Role, ...] = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT, Role.EDITOR)

#: Everything: users, tokens, settings, queues, the audit log.
ADMIN_ONLY: frozenset[Role] = frozenset({Role.ADMIN})
#: Every queue's conversations, reassigning, reports.
SUPERVISORS: frozenset[Role] = frozenset({Role.ADMIN, Role.SUPERVISOR})
#: Answering customers: agents see their queues' conversations and their own.
AGENT_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AGENT})
#: Flows: list, validate, save, diff, roll back.
FLOW_EDITORS: frozenset[Role] = frozenset({Role.ADMIN, Role.EDITOR})
#: Anyone signed in, editors too (their own profile, sign-out, socket tickets).
SIGNED_IN: frozenset[Role] = frozenset(ROLES)


def parse_role(value: str) -> Role:
    """The role named ``value``; ValueError naming the roles otherwise."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {value!r}; use one of {', '.join(ROLES)}") from None


def sees_every_queue(role: Role) -> bool:
    """Supervisors and admins see every queue's conversations; agents only their queues' and their own."""
    return role in SUPERVISORS


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: a signed-in person or an API token, with the role that decides what they may do.

    ``agent_id`` is how the workflow, the transcript (``agent:<id>``) and the store name
    them as an agent: a user's id as text, ``token:<name>`` for a machine.
    """

    kind: str  # user | token
    agent_id: str
    role: Role
    display_name: str
    #: the user's row id; None for a token
    user_id: int | None = None
    email: str = ""
    language: str = "en"

    @property
    def actor(self) -> str:
        """What the audit log calls them: ``user:<id>`` or ``token:<name>``."""
        return f"user:{self.user_id}" if self.user_id is not None else self.agent_id
