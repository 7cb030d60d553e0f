"""``/api/flows``: list, read, validate, save, history, diff and roll back flows.

Saving writes the flow's file in the flows directory (the files stay the source
of truth, so an operator's editor and the web editor never disagree) and
publishes it at once, with the author and message of the change on the stored
revision.
"""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, KwargDefinition, QueryParameter, RequestBody

from engine.flow.knowledge import knowledge_digests
from engine.flow.validate import CompileResult, compile_source
from engine.flow.vocabulary import DEFAULT_VOCABULARY
from engine.people.roles import FLOW_EDITORS
from engine.server.api_models import diagnostic_views
from engine.server.api_models_flows import (
    FlowDiff,
    FlowFile,
    FlowList,
    FlowRevisionList,
    FlowRevisionSource,
    FlowRevisionSummary,
    FlowSummary,
    FlowValidation,
    InvalidFlowFile,
    RolledBackFlow,
    SavedFlow,
)
from engine.server.api_request import ApiRequest
from engine.server.audit import audit
from engine.server.problems import Problem, problem_responses
from engine.server.services import ServicesDep

MAX_SOURCE_BYTES = 512_000


@dataclass
class SourceBody:
    """A flow's source to check."""

    source: str


#: Who made a change: a name with something besides spaces in it (a save refuses others).
Author = Annotated[str, KwargDefinition(min_length=1, pattern=r"\S", description="who made the change")]


@dataclass
class SaveBody:
    """A flow's new source, with who made the change and why."""

    source: str
    author: Author
    message: str = ""


@dataclass
class RollbackBody:
    """The earlier revision to make live again, with who did it and why."""

    revision: Annotated[str, KwargDefinition(min_length=1)]
    author: Author
    message: str = ""


def _compile(services: ServicesDep, source: str, file: str) -> CompileResult:
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise Problem(413, f"a flow file is limited to {MAX_SOURCE_BYTES} bytes")
    # Other live flows are valid targets of `call` and `goto_flow`.
    known = DEFAULT_VOCABULARY.with_flows(frozenset(services.catalog.live_map()))
    return compile_source(
        source,
        file,
        vocabulary=known,
        knowledge=services.reloader.flows_dir,
        installation=services.settings_reloader.settings.installation(),
    )


class FlowsController(Controller):
    path = "/api/flows"
    tags = ["flows"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest
    opt = {"roles": FLOW_EDITORS}  # noqa: RUF012 - who reaches these routes (engine.people.roles)

    @get(
        "/",
        summary="Every flow with its live revision and the errors of its last edit",
        operation_id="listFlows",
        responses=problem_responses(),
    )
    async def list_flows(self, services: ServicesDep) -> FlowList:
        live = services.catalog.live_map()
        flows = []
        for name in sorted(live):
            status = services.reloader.status_of(name)
            compiled = services.catalog.live(name)
            flows.append(
                FlowSummary(
                    name=name,
                    description=compiled.description if compiled else "",
                    file=status.file if status else None,
                    live_revision=live[name],
                    last_error=diagnostic_views(status.errors) if status and status.errors else None,
                    checked_at=status.checked_at if status else None,
                )
            )
        broken = [
            InvalidFlowFile(file=s.file, errors=diagnostic_views(s.errors), checked_at=s.checked_at)
            for s in services.reloader.broken_files()
        ]
        return FlowList(flows=flows, invalid_files=broken)

    @get(
        "/{name:str}",
        summary="A flow's file as it is now, and its live revision",
        operation_id="getFlow",
        responses=problem_responses(404),
    )
    async def get_flow(self, services: ServicesDep, name: FromPath[str]) -> FlowFile:
        revision = services.catalog.live_map().get(name)
        status = services.reloader.status_of(name)
        if revision is None and status is None:
            raise Problem(404, f"there is no flow {name!r}; GET /api/flows lists them")
        path = services.reloader.file_for(name)
        try:
            source = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            stored = await asyncio.to_thread(services.store.revision_source, revision) if revision else None
            source = stored or ""
        return FlowFile(
            name=name,
            file=str(path),
            live_revision=revision,
            source=source,
            last_error=diagnostic_views(status.errors) if status and status.errors else None,
        )

    @post(
        "/validate",
        status_code=200,
        summary="Check a flow's source without saving it",
        operation_id="validateFlow",
        responses=problem_responses(400, 413, 415),
    )
    async def validate(self, services: ServicesDep, data: RequestBody[SourceBody]) -> FlowValidation:
        result = await asyncio.to_thread(_compile, services, data.source, "<editor>")
        return FlowValidation(
            valid=result.flow is not None,
            flow=result.flow.name if result.flow else None,
            revision=result.flow.revision if result.flow else None,
            diagnostics=diagnostic_views(result.diagnostics),
        )

    @put(
        "/{name:str}",
        summary="Save a flow: a new revision, live at once, written to its file",
        operation_id="saveFlow",
        responses=problem_responses(400, 413, 415, 422),
    )
    async def save(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: FromPath[str], data: RequestBody[SaveBody]
    ) -> SavedFlow:
        saved = await asyncio.to_thread(_save, services, name, data.source, data.author, data.message)
        await audit(request, "flow.save", target=name, detail={"revision": saved.revision})
        return saved

    @get(
        "/{name:str}/revisions",
        summary="A flow's revisions, newest first",
        operation_id="listFlowRevisions",
        responses=problem_responses(404),
    )
    async def revisions(self, services: ServicesDep, name: FromPath[str]) -> FlowRevisionList:
        rows = await asyncio.to_thread(services.store.history, name)
        if not rows:
            raise Problem(404, f"flow {name!r} has no stored revisions")
        live = services.catalog.live_map().get(name)
        return FlowRevisionList(
            flow=name,
            revisions=[
                FlowRevisionSummary(
                    revision=r.revision,
                    author=r.author,
                    message=r.message,
                    created_at=r.created_at.isoformat(),
                    live=r.revision == live,
                    knowledge=knowledge_digests(r.knowledge),
                )
                for r in rows
            ],
        )

    @get(
        "/{name:str}/revisions/{revision:str}",
        summary="The source of one revision",
        operation_id="getFlowRevision",
        responses=problem_responses(404),
    )
    async def revision(self, services: ServicesDep, name: FromPath[str], revision: FromPath[str]) -> FlowRevisionSource:
        row = await asyncio.to_thread(services.store.get_revision, revision)
        if row is None or row.flow != name:
            raise Problem(404, f"flow {name!r} has no revision {revision!r}")
        return FlowRevisionSource(
            flow=name,
            revision=row.revision,
            author=row.author,
            message=row.message,
            source=row.source,
            knowledge=dict(row.knowledge),
        )

    @get(
        "/{name:str}/diff",
        summary="Unified diff between two revisions (default: to the live one)",
        operation_id="diffFlowRevisions",
        responses=problem_responses(400, 404),
    )
    async def diff(
        self,
        services: ServicesDep,
        name: FromPath[str],
        from_revision: Annotated[str, QueryParameter(name="from")],
        to_revision: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> FlowDiff:
        target = to_revision or services.catalog.live_map().get(name)
        if target is None:
            raise Problem(404, f"flow {name!r} has no live revision; pass `to`")
        rows = []
        for revision in (from_revision, target):
            row = await asyncio.to_thread(services.store.get_revision, revision)
            if row is None or row.flow != name:
                raise Problem(404, f"flow {name!r} has no revision {revision!r}")
            rows.append(row)
        old, new = rows
        # The flow file first, then each knowledge file the two revisions hold differently.
        files = [(name, old.source, new.source)]
        files += [
            (path, old.knowledge.get(path, ""), new.knowledge.get(path, ""))
            for path in sorted({*old.knowledge, *new.knowledge})
        ]
        lines = [
            line
            for file, before, after in files
            for line in difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=f"{file}@{from_revision[:12]}",
                tofile=f"{file}@{target[:12]}",
            )
        ]
        return FlowDiff(flow=name, from_revision=from_revision, to_revision=target, diff="".join(lines))

    @post(
        "/{name:str}/rollback",
        status_code=200,
        summary="Make an earlier revision live again (as a new save)",
        operation_id="rollBackFlow",
        responses=problem_responses(400, 404, 413, 415, 422),
    )
    async def rollback(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        name: FromPath[str],
        data: RequestBody[RollbackBody],
    ) -> RolledBackFlow:
        row = await asyncio.to_thread(services.store.get_revision, data.revision)
        if row is None or row.flow != name:
            raise Problem(404, f"flow {name!r} has no revision {data.revision!r}")
        message = data.message or f"roll back to {data.revision[:12]}"
        saved = await asyncio.to_thread(_save, services, name, row.source, data.author, message)
        await audit(request, "flow.rollback", target=name, detail={"to": data.revision, "revision": saved.revision})
        # The flow file is restored; knowledge files may serve other flows too and are
        # not: the ones that now read otherwise than in that revision are named.
        then, now = knowledge_digests(row.knowledge), saved.knowledge
        return RolledBackFlow(
            **msgspec.structs.asdict(saved),
            knowledge_differs=sorted(p for p in {*then, *now} if then.get(p) != now.get(p)),
        )


def _save(services: ServicesDep, name: str, source: str, author: str, message: str) -> SavedFlow:
    if not author.strip():
        raise Problem(400, "a save needs an `author` (who made the change)")
    path = services.reloader.file_for(name)
    result = _compile(services, source, str(path))
    if result.flow is None:
        raise Problem(
            422,
            f"the flow does not validate ({len(result.diagnostics)} problem(s)); nothing was saved",
            diagnostics=[d.to_dict() for d in result.diagnostics],
        )
    if result.flow.name != name:
        raise Problem(422, f"the source defines flow {result.flow.name!r}, not {name!r}; save it under its own name")
    flow = result.flow
    # Stored first with who and why; the reload that follows finds it and keeps that.
    services.store.put_revision(
        flow.revision, flow.source, flow=name, knowledge=flow.knowledge, author=author.strip(), message=message
    )
    services.reloader.write(name, source)
    services.reloader.reload()
    return SavedFlow(
        flow=name,
        revision=flow.revision,
        live=services.catalog.live_map().get(name) == flow.revision,
        file=str(path),
        knowledge=knowledge_digests(flow.knowledge),
    )
