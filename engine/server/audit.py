"""One call for handlers to audit what an agent or admin did: who (the request's principal), what, where from."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from engine.server.auth import principal_of


async def audit(
    connection: ASGIConnection[Any, Any, Any, Any],
    action: str,
    *,
    conversation_id: str | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an audit entry for ``action`` (``conversation.take``, ``user.create``, ...) by the caller."""
    principal = principal_of(connection)
    store = connection.app.state.services.store
    client = connection.client
    await store.in_write_thread(
        store.audit,
        actor=principal.actor,
        actor_role=str(principal.role),
        action=action,
        conversation_id=conversation_id,
        target=target,
        detail=detail,
        address=client.host if client is not None else "",
    )
