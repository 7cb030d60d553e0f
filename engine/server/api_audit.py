"""``/api/audit``: the audit log for admins, filtered and paged, as JSON or CSV.

Pages go back in time by entry id (``before_id``), not by offset: entries keep
being appended while someone reads, and an id cursor neither repeats nor skips one.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import FromQuery, QueryParameter

from engine.people.roles import ADMIN_ONLY
from engine.server.api_models_reports import AuditList, AuditView
from engine.server.api_reports import DATE_TIME, JsonOrCsv, csv_response, parse_time, wants_csv
from engine.server.api_request import ApiRequest
from engine.server.problems import MAX_SAFE_INTEGER, Problem, problem_responses
from engine.server.services import ServicesDep
from engine.store.tables import AuditEntry

#: The most entries one CSV export holds (JSON pages are up to 500).
CSV_LIMIT = 50_000


def audit_view(row: AuditEntry) -> AuditView:
    assert row.id is not None  # a stored entry has one
    return AuditView(
        id=row.id,
        at=row.at.isoformat(),
        actor=row.actor,
        actor_role=row.actor_role,
        action=row.action,
        conversation_id=row.conversation_id,
        target=row.target,
        detail=dict(row.detail or {}),
        address=row.address,
    )


class AuditController(Controller):
    path = "/api/audit"
    tags = ["audit"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @get(
        "/",
        summary="Audit entries newest first, filtered by actor, action, conversation and time; JSON or CSV",
        operation_id="listAudit",
        opt={"roles": ADMIN_ONLY},
        responses=problem_responses(403),
        operation_class=JsonOrCsv,
    )
    async def list_audit(  # noqa: PLR0917 - each query parameter is one argument to Litestar
        self,
        request: ApiRequest,
        services: ServicesDep,
        actor: Annotated[str | None, QueryParameter(description="`user:<id>` or `token:<name>`")] = None,
        action: Annotated[
            str | None,
            QueryParameter(description="e.g. `conversation.take`; `conversation.*` for every conversation action"),
        ] = None,
        conversation_id: FromQuery[str | None] = None,
        since: Annotated[str | None, QueryParameter(description="ISO 8601, included", schema_extra=DATE_TIME)] = None,
        until: Annotated[str | None, QueryParameter(description="ISO 8601, excluded", schema_extra=DATE_TIME)] = None,
        before_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_SAFE_INTEGER, description="entries older than this one")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        format: Annotated[str, QueryParameter(description="json (default) or csv", pattern="^(json|csv)$")] = "json",
    ) -> Response[AuditList]:
        start = parse_time(since, "since") if since is not None else None
        end = parse_time(until, "until") if until is not None else None
        if start is not None and end is not None and start >= end:
            raise Problem(400, "`since` must be before `until`")
        as_csv = wants_csv(request, format)
        rows = await asyncio.to_thread(
            services.store.list_audit,
            actor=actor,
            action=action,
            conversation_id=conversation_id,
            since=start,
            until=end,
            before_id=before_id,
            # A CSV export is the whole selection; a JSON page one more than asked, to know if there is a next.
            limit=CSV_LIMIT if as_csv else limit + 1,
        )
        if as_csv:
            columns = ["id", "at", "actor", "actor_role", "action", "conversation_id", "target", "detail", "address"]
            return csv_response([audit_view(r) for r in rows], columns, "audit.csv")  # type: ignore[return-value]
        page = rows[:limit]
        more = len(rows) > limit
        return Response(AuditList(entries=[audit_view(r) for r in page], next_before_id=page[-1].id if more else None))
