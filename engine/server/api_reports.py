"""``/api/reports``: per-agent and per-queue figures over a time range, as JSON or CSV (supervisors and admins).

CSV is asked for with ``?format=csv`` or ``Accept: text/csv`` and has one row per
agent or queue with the JSON members as columns, so a spreadsheet opens it as is.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import QueryParameter

from engine.people.reports import Report, average, percentile
from engine.people.roles import SUPERVISORS
from engine.server.api_models_reports import AgentReport, AgentReportRow, QueueReport, QueueReportRow
from engine.server.api_request import ApiRequest
from engine.server.problems import Problem, problem_responses
from engine.server.services import ServicesDep

DEFAULT_RANGE = timedelta(days=7)
#: The longest range one report covers: a quarter, so a request cannot make the server read years of log.
MAX_RANGE = timedelta(days=93)
#: Litestar adds the charset (utf-8) to a text/* media type itself.
CSV = "text/csv"
_FORMAT = Annotated[str, QueryParameter(description="json (default) or csv", pattern="^(json|csv)$")]
#: How a time parameter is described: an RFC 3339 date-time (a date alone, or a time
#: without a zone, is taken too: midnight, UTC).
DATE_TIME: dict[str, Any] = {"format": "date-time"}


#: The earliest and latest moments a time parameter stands for: a time beyond them (year 1
#: at +14:00, year 9999 at -14:00) is the nearest of them, so no arithmetic overflows.
EARLIEST = datetime.min.replace(tzinfo=UTC) + MAX_RANGE
LATEST = datetime.max.replace(tzinfo=UTC) - MAX_RANGE


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 time in UTC (a date alone is its midnight; no zone is UTC); 400 naming the parameter."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Problem(400, f"`{name}` is not an ISO 8601 time: {value!r} (e.g. 2026-03-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # beyond year 1 or 9999 once in UTC
        return EARLIEST if moment.year == datetime.min.year else LATEST
    return min(max(moment, EARLIEST), LATEST)


def time_range(
    since: str | None, until: str | None, *, default: timedelta = DEFAULT_RANGE
) -> tuple[datetime, datetime]:
    """``[from, to)``: ``to`` defaults to now, ``from`` to ``default`` before it."""
    end = parse_time(until, "to") if until is not None else datetime.now(UTC)
    start = parse_time(since, "from") if since is not None else end - default
    if start >= end:
        raise Problem(400, "`from` must be before `to`")
    if end - start > MAX_RANGE:
        raise Problem(400, f"the range is longer than {MAX_RANGE.days} days; ask for a shorter one")
    return start, end


@dataclass
class JsonOrCsv(Operation):
    """An operation whose success is JSON or, when asked for, the same rows as CSV (``text/csv``)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                **(ok.content or {}),
                "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description="one row per line")),
            }


def wants_csv(request: Request[Any, Any, Any], fmt: str) -> bool:
    if fmt == "csv":
        return True
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _cell(value: Any) -> Any:
    """A CSV cell: JSON for structures; text a spreadsheet would run as a formula is quoted with ``'``."""
    if isinstance(value, (dict, list)):
        value = msgspec.json.encode(value).decode()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_response(rows: Iterable[msgspec.Struct], columns: Sequence[str], filename: str) -> Response[bytes]:
    """``rows`` (API models) as a CSV download, their JSON members as the columns."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        data = msgspec.to_builtins(row)
        writer.writerow([_cell(data.get(column)) for column in columns])
    return Response(
        out.getvalue().encode(),
        media_type=CSV,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _fields(model: type[msgspec.Struct]) -> list[str]:
    return [field.encode_name for field in msgspec.structs.fields(model)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def agent_rows(report: Report, names: dict[str, str]) -> list[AgentReportRow]:
    return [
        AgentReportRow(
            agent=stats.agent,
            display_name=names.get(stats.agent, stats.agent),
            handled=len(stats.handled),
            first_reply_p50_s=_round(percentile(stats.first_reply, 0.5)),
            first_reply_p90_s=_round(percentile(stats.first_reply, 0.9)),
            first_replies=len(stats.first_reply),
            resolution_p50_s=_round(percentile(stats.resolution, 0.5)),
            resolution_p90_s=_round(percentile(stats.resolution, 0.9)),
            resolved=len(stats.resolution),
            csat_average=average(stats.ratings),
            csat_count=len(stats.ratings),
        )
        for stats in report.agents
    ]


def queue_rows(report: Report) -> list[QueueReportRow]:
    return [
        QueueReportRow(
            queue=stats.queue,
            handoffs=stats.handoffs,
            assignment_wait_p50_s=_round(percentile(stats.assignment_wait, 0.5)),
            assignment_wait_p90_s=_round(percentile(stats.assignment_wait, 0.9)),
            assigned=len(stats.assignment_wait),
            abandoned=stats.abandoned,
            csat_average=average(stats.ratings),
            csat_count=len(stats.ratings),
        )
        for stats in report.queues
    ]


_RESPONSES = problem_responses(403)
#: A report's range, as both reports take it.
_FROM = Annotated[
    str | None, QueryParameter(name="from", description="ISO 8601; default: 7 days before `to`", schema_extra=DATE_TIME)
]
_TO = Annotated[str | None, QueryParameter(name="to", description="ISO 8601; default: now", schema_extra=DATE_TIME)]


class ReportsController(Controller):
    path = "/api/reports"
    tags = ["reports"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @get(
        "/agents",
        summary="Per agent: handled, first-reply and resolution times (p50/p90), CSAT; JSON or CSV",
        operation_id="reportAgents",
        opt={"roles": SUPERVISORS},
        responses=_RESPONSES,
        operation_class=JsonOrCsv,
    )
    async def agents(
        self,
        request: ApiRequest,
        services: ServicesDep,
        since: _FROM = None,
        until: _TO = None,
        format: _FORMAT = "json",
    ) -> Response[AgentReport]:
        start, end = time_range(since, until)
        report = await asyncio.to_thread(services.store.report, start, end)
        names = await asyncio.to_thread(services.store.agent_names, [a.agent for a in report.agents])
        rows = agent_rows(report, names)
        if wants_csv(request, format):
            return csv_response(rows, _fields(AgentReportRow), "agents.csv")  # type: ignore[return-value]
        return Response(AgentReport(from_=start.isoformat(), to=end.isoformat(), agents=rows))

    @get(
        "/queues",
        summary="Per queue: hand-offs, assignment wait (p50/p90), abandoned, CSAT; JSON or CSV",
        operation_id="reportQueues",
        opt={"roles": SUPERVISORS},
        responses=_RESPONSES,
        operation_class=JsonOrCsv,
    )
    async def queues(
        self,
        request: ApiRequest,
        services: ServicesDep,
        since: _FROM = None,
        until: _TO = None,
        format: _FORMAT = "json",
    ) -> Response[QueueReport]:
        start, end = time_range(since, until)
        report = await asyncio.to_thread(services.store.report, start, end)
        rows = queue_rows(report)
        if wants_csv(request, format):
            return csv_response(rows, _fields(QueueReportRow), "queues.csv")  # type: ignore[return-value]
        return Response(QueueReport(from_=start.isoformat(), to=end.isoformat(), queues=rows))
