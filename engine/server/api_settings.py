"""``/api/settings``: the live settings revision, and why the file's last edit was refused, if it was.

Only the public part is shown (what flows read: brand, values, calendars, limits,
messages): it is all a settings revision holds, and it never holds a secret.
"""

from __future__ import annotations

from litestar import Controller, get

from engine.people.roles import ADMIN_ONLY
from engine.server.api_models_settings import SettingsProblem, SettingsView
from engine.server.api_request import ApiRequest
from engine.server.problems import problem_responses
from engine.server.services import ServicesDep


class SettingsController(Controller):
    path = "/api/settings"
    tags = ["settings"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest
    opt = {"roles": ADMIN_ONLY}  # noqa: RUF012 - who reaches these routes (engine.people.roles)

    @get(
        "/",
        summary="The live settings revision, and the errors of the settings file's last edit",
        operation_id="getSettings",
        responses=problem_responses(),
    )
    async def get_settings(self, services: ServicesDep) -> SettingsView:
        reloader = services.settings_reloader
        status = reloader.status
        live = services.catalog.live_settings
        errors = [SettingsProblem.at(d) for d in status.errors]
        if status.error:
            errors.append(SettingsProblem(file=status.file, message=status.error))
        return SettingsView(
            file=status.file,
            revision=live.revision,
            settings=dict(live.data),
            status="error" if errors else "ok",
            errors=errors,
            checked_at=status.checked_at,
        )
