"""``/api/settings``: the live settings revision, and why the file's last edit was refused, if it was.

Only the public part is shown (what flows read: brand, values, calendars, limits,
messages): it is all a settings revision holds, and it never holds a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, get

from engine.server.api_request import ApiRequest
from engine.server.problems import problem_responses
from engine.server.services import ServicesDep


@dataclass
class SettingsView:
    """The live settings revision and the state of the file it came from."""

    #: the settings file, or None when the node runs on defaults
    file: str | None
    #: the live settings revision's id (sha256 of its canonical JSON)
    revision: str
    #: its content: what flows read as ``settings.*``, ``business_hours()`` and system messages
    settings: dict[str, Any]
    #: ``ok``, or ``error`` when the file's last edit was refused (the revision above stays live)
    status: str
    #: the refused edit's problems, each with file, line, column, code and hint
    errors: list[dict[str, Any]] = field(default_factory=list)
    checked_at: str = ""


class SettingsController(Controller):
    path = "/api/settings"
    tags = ["settings"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @get(
        "/",
        summary="The live settings revision, and the errors of the settings file's last edit",
        operation_id="get_settings",
        responses=problem_responses(),
    )
    async def get_settings(self, services: ServicesDep) -> SettingsView:
        reloader = services.settings_reloader
        status = reloader.status
        live = services.catalog.live_settings
        errors = [d.to_dict() for d in status.errors]
        if status.error:
            errors.append({"file": status.file, "message": status.error})
        return SettingsView(
            file=status.file,
            revision=live.revision,
            settings=dict(live.data),
            status="error" if errors else "ok",
            errors=errors,
            checked_at=status.checked_at,
        )
