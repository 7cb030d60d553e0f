"""The Litestar application: web chat, REST API, health, metrics and the UI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from litestar import Litestar, MediaType, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.static_files import create_static_files_router
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from engine.metrics import watch_conversations, watch_people
from engine.people.roles import SUPERVISORS
from engine.resources import bundled_dir
from engine.server.agent_socket import ROUTES as AGENT_SOCKET_ROUTES
from engine.server.api_agent_actions import AgentActionsController
from engine.server.api_agents import AgentsController
from engine.server.api_audit import AuditController
from engine.server.api_auth import AuthController
from engine.server.api_canned import CannedController
from engine.server.api_conversations import ConversationsController
from engine.server.api_flows import FlowsController
from engine.server.api_models import DescribedModels, Health, Readiness
from engine.server.api_queues import QueuesController
from engine.server.api_reports import ReportsController
from engine.server.api_settings import SettingsController
from engine.server.api_users import UsersController
from engine.server.apidocs import LocalRedocPlugin
from engine.server.auth import require_principal
from engine.server.demo_shop import demo_order, order_api_enabled
from engine.server.problems import handle_http_exception, handle_unexpected, problem_response, problem_responses
from engine.server.services import Services, ServicesDep
from engine.server.static_paths import refuse_odd_static_path
from engine.server.webhooks import WEBHOOK_ROUTES

OPENAPI_PATH = "/schema"  # public: see engine.server.auth.PUBLIC_PREFIXES


@get(
    "/healthz",
    opt={"public": True},
    summary="Liveness: the process answers",
    include_in_schema=True,
    operation_id="getHealth",
)
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    opt={"public": True},
    summary="Readiness: Temporal and the database answer",
    operation_id="getReadiness",
    # Public and without parameters: a 503 naming what does not answer is its only problem.
    responses={503: problem_responses(503)[503]},
)
async def readyz(services: ServicesDep) -> Response[Readiness]:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(asyncio.to_thread(services.store.ping), timeout=3)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", with the reason shown
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        await asyncio.wait_for(services.conversations.client.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"unreachable: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return Response(Readiness(status="ready", checks=checks))
    failing = ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
    return problem_response(503, f"not ready: {failing}", checks=checks)


@get(
    "/metrics",
    opt={"roles": SUPERVISORS},
    summary="Prometheus metrics (docs/metrics.md lists them)",
    media_type=MediaType.TEXT,
)
async def metrics() -> Response[bytes]:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@get("/", opt={"public": True}, include_in_schema=False, media_type=MediaType.HTML)
async def demo_page() -> Response[bytes]:
    page = bundled_dir("ui") / "demo" / "index.html"
    return Response(await asyncio.to_thread(page.read_bytes), media_type=MediaType.HTML)


def channel_routes(services: Services) -> list[Any]:
    """Every route a channel of this node serves (``routes()``, optional on a channel)."""
    routes: list[Any] = []
    for channel in services.channels.values():
        serve = getattr(channel, "routes", None)
        if callable(serve):
            routes.extend(serve())
    return routes


def people_gauges(services: Services) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """What the queue and presence gauges read at each scrape: the store, and the settings' queues as they are then.

    Functions, so building the app (the API client generator does, without a store) reads nothing.
    """

    def waiting() -> Any:
        return services.store.queue_waiting()

    def presence() -> Any:
        queues = services.settings.people.queues
        return services.store.presence_by_queue({name: spec.member_emails for name, spec in queues.items()})

    return waiting, presence


def create_app(services: ServicesDep, *, debug: bool = False) -> Litestar:
    """The server for one node; ``services`` are built by ``flowdesk serve`` or a test."""
    watch_conversations(services.store.count_by_status)
    watch_people(*people_gauges(services))
    static = create_static_files_router(
        path="/ui",
        directories=[bundled_dir("ui")],
        opt={"public": True},
        name="ui",
        include_in_schema=False,
        before_request=refuse_odd_static_path,
    )
    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics,
            demo_page,
            # Vendors' webhooks (every WebhookChannel), and routes channels serve themselves (web chat's socket).
            *WEBHOOK_ROUTES,
            *channel_routes(services),
            # The agents' real-time stream (authenticates itself: cookie + Origin, ticket or token).
            *AGENT_SOCKET_ROUTES,
            FlowsController,
            ConversationsController,
            AgentActionsController,
            QueuesController,
            AgentsController,
            SettingsController,
            CannedController,
            AuditController,
            ReportsController,
            AuthController,
            UsersController,
            static,
            # Demo data only, and only where the settings turn it on (demo.order_api).
            *([demo_order] if order_api_enabled(services.settings) else []),
        ],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        guards=[require_principal],
        # Each model's docstring describes its schema in the OpenAPI document.
        plugins=[DescribedModels()],
        exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected},
        openapi_config=OpenAPIConfig(
            title="Flowdesk API",
            version="1",
            description="Flows, conversations and operations of a Flowdesk installation. Send "
            "`Authorization: Bearer <token>` (from `flowdesk token create`) to every endpoint but health.",
            path=OPENAPI_PATH,
            # Redoc at /schema itself, from ui/apidocs/ (Litestar's viewers load from CDNs);
            # the JSON and YAML descriptions beside it.
            render_plugins=[LocalRedocPlugin(), JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        state=State({"services": services}),
        # Logging is configured once by `flowdesk serve` (text or JSON); Litestar keeps its hands off.
        logging_config=None,
        debug=debug,
    )
