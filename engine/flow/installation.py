"""What the validator knows about the installation a flow will run in.

A flow names things that live in ``flowdesk.yaml``, not in the flow: business-hours
calendars (``business_hours('support')``), public settings (``settings.shop_api``),
AI profiles (``profile: default``) and agent queues (``handoff: {queue: tier1}``).
With an :class:`Installation` the validator checks those names too; without one it cannot, and callers say the check was
skipped. Plain names only: this module knows nothing of how settings are read, so
the flow layer stays independent of ``engine.settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Installation:
    """The names an installation's settings define, and the file they came from."""

    #: calendars under ``business_hours:``
    calendars: frozenset[str] = frozenset()
    #: what ``settings.<name>`` may read: ``brand`` and the keys under ``values:``
    settings_names: frozenset[str] = frozenset({"brand"})
    #: profiles under ``ai_profiles:``
    ai_profiles: frozenset[str] = frozenset()
    #: configured channel accounts by kind (``{"whatsapp": {"default", "sales"}}``); None: not
    #: known, so ``kind:account`` references are not checked
    channel_accounts: Mapping[str, frozenset[str]] | None = None
    #: queues described under ``queues:``; None when the settings describe none (then the
    #: queues are the admins', in the database, which the validator cannot see: not checked)
    queues: frozenset[str] | None = None
    #: the settings file, for messages ("not defined in flowdesk.yaml")
    source: str = "<settings>"

    def known(self, names: frozenset[str]) -> str:
        """``'a', 'b'`` or ``none`` — for "known: ..." in a hint."""
        return ", ".join(repr(n) for n in sorted(names)) or "none"


__all__ = ["Installation"]
