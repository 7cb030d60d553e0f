"""The public settings a conversation reads, as a content-addressed revision.

Flows read ``settings.*`` (brand, ``values``), ``business_hours(name)`` and the
installation's limits and customer-facing messages. These come from
``flowdesk.yaml``, which an operator edits while conversations run. So, like a
flow, the public part of the settings is a revision: canonical JSON, identified by
its sha256, stored once and never changed. A conversation carries the revision
id; workflow code loads the revision by id (deterministic on replay, on any
worker) and never reads settings from a worker's memory.

:func:`interpreter_context` is the one way an :class:`InterpreterContext` is made
from settings: ``flowdesk try``/``test`` and the workflow both call it, so what a
flow test passes is what the server runs. Secrets are never part of it: the
settings schema keeps ``${env:NAME}`` references and ``secrets:`` outside
``values``, and :meth:`PublicSettings.from_settings_data` copies only the keys
below.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from engine.flow.calendar import BusinessCalendar
from engine.flow.context import INTERPRETER_FEATURES, FlowResolver, FlowSettings, InterpreterContext, Limits

#: The settings keys that flows can observe; everything else stays out of the revision.
PUBLIC_KEYS = ("brand", "values", "business_hours", "limits", "messages")
#: Limits the interpreter applies (the other ``limits.*`` are the server's).
INTERPRETER_LIMITS = ("max_steps_per_turn",)


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class PublicSettings:
    """One settings revision: ``data`` (JSON-compatible) and ``revision`` (its sha256)."""

    data: Mapping[str, Any] = field(default_factory=dict)
    revision: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PublicSettings:
        """A revision of already-public data (as stored); the id is recomputed, never trusted."""
        canonical = _canonical(data)
        return cls(json.loads(canonical), hashlib.sha256(canonical.encode()).hexdigest())

    @classmethod
    def from_settings_data(cls, settings: Mapping[str, Any]) -> PublicSettings:
        """The public part of a validated ``flowdesk.yaml`` mapping.

        Raises ``ValueError`` naming the calendar when a business-hours calendar is
        invalid, so a broken edit is refused before it becomes a revision.
        """
        data: dict[str, Any] = {}
        for key in PUBLIC_KEYS:
            value = settings.get(key)
            if value is None:
                continue
            if key == "limits":
                value = {k: v for k, v in dict(value).items() if k in INTERPRETER_LIMITS}
                if not value:
                    continue
            data[key] = value
        public = cls.from_data(data)
        public.flow_settings  # noqa: B018 - parse the calendars now: a bad one is the edit's error
        return public

    @cached_property
    def flow_settings(self) -> FlowSettings:
        """What flows read as ``settings.*``, ``business_hours(name)`` and the system messages."""
        calendars: dict[str, BusinessCalendar] = {}
        for name, spec in (self.data.get("business_hours") or {}).items():
            try:
                calendars[name] = BusinessCalendar.from_settings(spec)
            except ValueError as exc:
                raise ValueError(f"business_hours.{name}: {exc}") from None
        return FlowSettings(
            brand=str(self.data.get("brand") or FlowSettings.brand),
            values=dict(self.data.get("values") or {}),
            calendars=calendars,
            messages=dict(self.data.get("messages") or {}),
        )

    @cached_property
    def limits(self) -> Limits:
        steps = (self.data.get("limits") or {}).get("max_steps_per_turn")
        return Limits(max_steps_per_turn=int(steps)) if steps is not None else Limits()


#: What a conversation that carries no settings revision runs with (it started before
#: revisions existed, or nothing configured any): the defaults.
#: Its id is "": nothing to load, on any worker.
DEFAULT_SETTINGS = PublicSettings({}, "")


def interpreter_context(
    flows: FlowResolver,
    settings: PublicSettings | None = None,
    *,
    features: frozenset[str] = frozenset(INTERPRETER_FEATURES),
) -> InterpreterContext:
    """The interpreter's context for ``flows`` under one settings revision (simulator and workflow alike)."""
    public = settings or DEFAULT_SETTINGS
    return InterpreterContext(flows, public.flow_settings, public.limits, features)


__all__ = ["DEFAULT_SETTINGS", "PUBLIC_KEYS", "PublicSettings", "interpreter_context"]
