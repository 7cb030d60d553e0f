"""What ``/api/settings`` answers with: the live settings revision and the state of its file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from engine.errors import Diagnostic, Severity
from engine.server.api_models import ApiModel, described, diagnostic_members


class SettingsProblem(ApiModel, kw_only=True):  # members keep the order of a diagnostic's
    """Why the settings file's last edit was refused.

    A problem at a place in the file has every member; one without a place (a file
    that cannot be read, say) has only `file` and `message`.
    """

    code: Annotated[str | msgspec.UnsetType, described("stable code; absent when the problem has no place")] = (
        msgspec.UNSET
    )
    severity: Severity | msgspec.UnsetType = msgspec.UNSET
    message: str
    hint: Annotated[str | msgspec.UnsetType, described("how to fix it")] = msgspec.UNSET
    file: Annotated[str | None, described("the settings file; null when the node runs on defaults")]
    line: Annotated[int | msgspec.UnsetType, described("1-based")] = msgspec.UNSET
    column: Annotated[int | msgspec.UnsetType, described("1-based")] = msgspec.UNSET
    path: Annotated[str | msgspec.UnsetType, described("where in the document, as a JSON path")] = msgspec.UNSET

    @classmethod
    def at(cls, diagnostic: Diagnostic) -> SettingsProblem:
        return cls(**diagnostic_members(diagnostic))


class SettingsView(ApiModel):
    """The live settings revision and the state of the file it came from.

    Only the public part is shown (what flows read): it is all a settings revision
    holds, and it never holds a secret.
    """

    file: Annotated[str | None, described("the settings file; null when the node runs on defaults")]
    revision: Annotated[str, described("the live settings revision's id (sha256 of its canonical JSON)")]
    settings: Annotated[
        dict[str, Any],
        described("its content: what flows read as `settings.*`, `business_hours()` and system messages"),
    ]
    status: Annotated[
        Literal["ok", "error"],
        described("`error` when the file's last edit was refused (the revision above stays live)"),
    ]
    errors: Annotated[list[SettingsProblem], described("the refused edit's problems; empty when status is ok")]
    checked_at: Annotated[str, described("when the file was last read (ISO 8601); empty if never")]
