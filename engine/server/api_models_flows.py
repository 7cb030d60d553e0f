"""What ``/api/flows`` answers with: flows, their validation, saves, revisions and diffs."""

from __future__ import annotations

from typing import Annotated

import msgspec

from engine.server.api_models import ApiModel, DiagnosticView, described


class FlowSummary(ApiModel):
    """A live flow, with the errors of its file's last edit if that edit was refused."""

    name: str
    description: Annotated[
        str | None, described("the flow's own `description`; null when it has none, empty when it is not loaded")
    ]
    file: Annotated[str | None, described("the file it came from; null when it is only in the store")]
    live_revision: Annotated[str, described("the revision new conversations start on")]
    last_error: Annotated[
        list[DiagnosticView] | None, described("why the file's last edit was refused; null when it was not")
    ]
    checked_at: Annotated[str | None, described("when the file was last read (ISO 8601); null if never")]


class InvalidFlowFile(ApiModel):
    """A file in the flows directory that defines no live flow because it does not compile."""

    file: str
    errors: list[DiagnosticView]
    checked_at: Annotated[str, described("when the file was last read (ISO 8601)")]


class FlowList(ApiModel):
    """Every live flow by name, and the files that do not compile."""

    flows: list[FlowSummary]
    invalid_files: list[InvalidFlowFile]


class FlowFile(ApiModel):
    """A flow's file as it is now, and its live revision."""

    name: str
    file: Annotated[str, described("where the flow is, or would be, written")]
    live_revision: Annotated[str | None, described("null when no revision of it is live (its file is broken)")]
    source: Annotated[str, described("the file's text, or the live revision's when the file is gone")]
    last_error: Annotated[
        list[DiagnosticView] | None, described("why the file's last edit was refused; null when it was not")
    ]


class FlowValidation(ApiModel):
    """What checking a flow's source found; nothing is saved."""

    valid: Annotated[bool, described("whether the source compiles (warnings allowed)")]
    flow: Annotated[str | None, described("the flow it defines; null when it does not compile")]
    revision: Annotated[str | None, described("the revision it would be; null when it does not compile")]
    diagnostics: list[DiagnosticView]


class SavedFlow(ApiModel):
    """A saved flow: its new revision, written to its file."""

    flow: str
    revision: str
    live: Annotated[bool, described("whether the revision is live now")]
    file: Annotated[str, described("the file it was written to")]
    knowledge: Annotated[dict[str, str], described("SHA-256 of each knowledge file the revision covers, by path")]


class RolledBackFlow(SavedFlow):
    """A flow rolled back: the earlier revision's source saved again as a new save."""

    knowledge_differs: Annotated[
        list[str],
        described(
            "knowledge files that now read otherwise than in that revision: they may serve other "
            "flows too and are not restored"
        ),
    ]


class FlowRevisionSummary(ApiModel):
    """One stored revision of a flow: who made it, why and when."""

    revision: str
    author: str
    message: str
    created_at: Annotated[str, described("ISO 8601")]
    live: Annotated[bool, described("whether it is the live revision")]
    knowledge: Annotated[dict[str, str], described("SHA-256 of each knowledge file it covers, by path")]


class FlowRevisionList(ApiModel):
    """A flow's stored revisions, newest first."""

    flow: str
    revisions: list[FlowRevisionSummary]


class FlowRevisionSource(ApiModel):
    """The source of one stored revision, with the knowledge files it covers."""

    flow: str
    revision: str
    author: str
    message: str
    source: str
    knowledge: Annotated[dict[str, str], described("the text of each knowledge file it covers, by path")]


class FlowDiff(ApiModel):
    """A unified diff between two revisions of a flow: its file, then each knowledge file that differs."""

    flow: str
    from_revision: Annotated[str, described("the revision the diff starts from")] = msgspec.field(name="from")
    to_revision: Annotated[str, described("the revision it goes to")] = msgspec.field(name="to")
    diff: Annotated[str, described("unified diff; empty when the revisions read the same")]
