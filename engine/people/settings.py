"""``people:`` and ``queues:`` of ``flowdesk.yaml``, as frozen objects (defaults written once, here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.flow.compile import parse_duration

#: The queue a hand-off waits in when nobody described it: anyone with an agent role may take it.
WAIT = "wait"
FALL_THROUGH = "fall_through"


def _seconds(value: object, default: float) -> float:
    """A settings duration (``30s``, ``8h``, a bare number of seconds) in seconds."""
    if value is None:
        return default
    # The flow language's duration parser: the one the schema's pattern describes.
    ms = parse_duration(value)  # type: ignore[arg-type]
    return default if ms is None else ms / 1000


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue: from the settings (``source="settings"``) or described by an admin (``"admin"``)."""

    name: str
    display_name: str = ""
    description: str = ""
    #: members' e-mail addresses (settings) or user ids as text (admin); see ``members_of``
    member_emails: tuple[str, ...] = ()
    member_ids: tuple[int, ...] = ()
    capacity: int | None = None
    hours: str | None = None
    when_nobody: str = WAIT
    source: str = "settings"

    @property
    def title(self) -> str:
        return self.display_name or self.name

    @classmethod
    def from_settings(cls, name: str, block: Mapping[str, Any]) -> QueueSpec:
        return cls(
            name=name,
            display_name=str(block.get("name", "")),
            description=str(block.get("description", "")),
            member_emails=tuple(str(e).strip().lower() for e in block.get("members", ())),
            capacity=block.get("capacity"),
            hours=block.get("hours"),
            when_nobody=str(block.get("when_nobody", WAIT)),
        )


@dataclass(frozen=True, slots=True)
class PeopleSettings:
    """Sessions, capacity, presence and sign-in limits (``people:``), and the queues of the settings."""

    session_idle_s: float = 8 * 3600
    session_max_s: float = 7 * 86400
    default_capacity: int = 5
    presence_grace_s: float = 120.0
    login_attempts: int = 5
    login_window_s: float = 15 * 60
    queues: Mapping[str, QueueSpec] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PeopleSettings:
        block = data.get("people") if isinstance(data.get("people"), Mapping) else {}
        assert isinstance(block, Mapping)
        queues = data.get("queues") if isinstance(data.get("queues"), Mapping) else {}
        assert isinstance(queues, Mapping)
        base = cls()
        return cls(
            session_idle_s=_seconds(block.get("session_idle"), base.session_idle_s),
            session_max_s=_seconds(block.get("session_max"), base.session_max_s),
            default_capacity=int(block.get("default_capacity", base.default_capacity)),
            presence_grace_s=_seconds(block.get("presence_grace"), base.presence_grace_s),
            login_attempts=int(block.get("login_attempts", base.login_attempts)),
            login_window_s=_seconds(block.get("login_window"), base.login_window_s),
            queues={str(name): QueueSpec.from_settings(str(name), q or {}) for name, q in queues.items()},
        )
