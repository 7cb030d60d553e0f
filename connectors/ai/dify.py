"""Dify: answers from a Dify chat app (chatbot or chatflow) through its chat-messages API.

Endpoint: ``POST {base_url}/chat-messages`` with ``Authorization: Bearer <app API key>``
and ``response_mode: "blocking"`` (one JSON answer). ``base_url`` defaults to Dify
Cloud, ``https://api.dify.ai/v1``; a self-hosted Dify is ``http(s)://<host>/v1``.

Parameters (the AI profile's settings merged with the flow's):

- ``api_key`` (required): the app's API key (``app-…``); a key belongs to one Dify app.
- ``base_url``: see above.
- ``inputs``: the app's input variables, sent as ``inputs`` (default ``{}``). A per-call
  ``inputs`` in the request's ``params`` is merged over it.
- ``params``: extra body fields sent unchanged, e.g. ``auto_generate_name: false``. The
  fields this provider owns (``query``, ``inputs``, ``response_mode``,
  ``conversation_id``, ``user``) are not overridden by them.
- ``model``, ``temperature``, ``max_tokens`` are ignored: the Dify app picks its model
  and settings itself. ``files`` are not sent.

What is not sent, and why: the system prompt and the context turns. A Dify app holds
its own prompt (edited in Dify), and Dify keeps the conversation's history on its side
under ``conversation_id``; its API has no field for either, and folding our turns into
``query`` would repeat history Dify already feeds the model. The conversation goes on
by ``conversation_id``: the id Dify returned last time
(``AIRequest.vendor_conversation_id``), or ``""`` to start a new one.

``user`` is required by Dify, and Dify finds a conversation only for the end user who
started it, so it must stay the same for the whole conversation: the request's
``user``, else ``flowdesk-<hash of Flowdesk's conversation id>`` (hashed so that
internal ids do not leave Flowdesk).

Stale conversations: when Dify no longer knows the id (deleted in the Dify console,
the app re-created, another user), it answers 404 ``not_found`` ("Conversation Not
Exists."); a conversation Dify has closed answers 400 ``conversation_completed``.
Either would fail every later turn, because the id is kept with the conversation, so
the provider retries once with ``conversation_id: ""`` and returns Dify's new id
(Dify's side of the history starts afresh). A 404 that has nothing to do with the
conversation (a wrong ``workflow_id``) fails again on the retry and is raised.

The answer: ``answer`` is the text, ``conversation_id`` the next turn's
``vendor_conversation_id``, ``metadata.usage`` the token counts. Blocking answers carry
no model name, so ``model`` is ``None`` unless the answer has a ``model`` field.
Confidence is the best ``metadata.retriever_resources[].score``: present only when the
app's knowledge retrieval found passages, it says how closely the best passage matched
the question (vector similarity or rerank score, 0..1), the one grounding signal Dify
gives. Without it the confidence is ``None``: unknown, not low.

Limits: Dify agent apps answer only in streaming mode (Dify rejects blocking calls for
them), and Dify Cloud cuts blocking calls off after 100 seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.ai.http import bearer, http_client, http_url, post_json, require
from engine.ai.types import AIReply, AIRequest, BadResponse, ProviderConfigError, Rejected, Usage

__all__ = ["DEFAULT_BASE_URL", "DifyProvider", "create"]

VENDOR = "dify"
DEFAULT_BASE_URL = "https://api.dify.ai/v1"
#: Body fields the provider sets itself; extra ``params`` cannot override them.
_OWN_FIELDS = frozenset({"query", "inputs", "response_mode", "conversation_id", "user"})
#: (HTTP status, Dify error code) of the answers that mean "this conversation id is no longer usable".
_STALE_CONVERSATION = frozenset({(404, "not_found"), (400, "conversation_completed")})


class DifyProvider:
    """A Dify chat app behind :class:`~engine.ai.types.AIProvider`; see the module docstring."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params
        self._api_key = require(params, "api_key", VENDOR)
        self.endpoint = f"{_base_url(params)}/chat-messages"
        self._inputs = _mapping(params, "inputs")
        self._extra = _mapping(params, "params")

    async def reply(self, request: AIRequest) -> AIReply:
        """Ask the app; a conversation id Dify no longer knows is replaced by a new conversation."""
        conversation_id = request.vendor_conversation_id or ""
        try:
            return await self._send(request, conversation_id)
        except Rejected as exc:
            if not conversation_id or (exc.status, exc.code) not in _STALE_CONVERSATION:
                raise
        return await self._send(request, "")

    async def _send(self, request: AIRequest, conversation_id: str) -> AIReply:
        body = self._body(request, conversation_id)
        answer, latency_ms = await post_json(
            http_client(self._params), self.endpoint, headers=bearer(self._api_key), body=body, vendor=VENDOR
        )
        return _reply(answer, latency_ms, sent_conversation_id=conversation_id)

    def _body(self, request: AIRequest, conversation_id: str) -> dict[str, Any]:
        call_inputs = request.params.get("inputs")
        inputs = {**self._inputs, **(call_inputs if isinstance(call_inputs, Mapping) else {})}
        extra = {key: value for key, value in self._extra.items() if key not in _OWN_FIELDS}
        return {
            "inputs": inputs,
            "query": request.message,
            "response_mode": "blocking",
            "conversation_id": conversation_id,
            "user": request.end_user,
            **extra,
        }


def create(params: Mapping[str, Any]) -> DifyProvider:
    """The ``dify`` provider (``connectors.ai.dify:create``)."""
    return DifyProvider(params)


def _base_url(params: Mapping[str, Any]) -> str:
    value = params.get("base_url")
    if value is None:  # left out: Dify Cloud
        return DEFAULT_BASE_URL
    return http_url(value, VENDOR, DEFAULT_BASE_URL)


def _mapping(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ProviderConfigError(f"{VENDOR}: `{name}` must be a mapping of field names to values")
    return value


def _reply(answer: Any, latency_ms: float, *, sent_conversation_id: str) -> AIReply:
    if not isinstance(answer, dict) or not isinstance(answer.get("answer"), str):
        raise BadResponse(f"{VENDOR}: the answer has no `answer` text")
    metadata = answer.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    conversation_id = answer.get("conversation_id")
    model = answer.get("model")
    return AIReply(
        text=answer["answer"],
        confidence=_best_score(metadata.get("retriever_resources")),
        usage=_usage(metadata.get("usage")),
        model=model if isinstance(model, str) and model else None,
        latency_ms=latency_ms,
        # Dify always returns the id; keep the one sent if it ever does not.
        vendor_conversation_id=conversation_id
        if isinstance(conversation_id, str) and conversation_id
        else sent_conversation_id or None,
    )


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _best_score(resources: Any) -> float | None:
    """The best retrieval score, clamped to 0..1; ``None`` when no knowledge was retrieved."""
    if not isinstance(resources, list):
        return None
    scores = [score for score in map(_score, resources) if score is not None]
    return min(1.0, max(0.0, *scores)) if scores else None


def _score(resource: Any) -> float | None:
    score = resource.get("score") if isinstance(resource, dict) else None
    # A passage without a numeric score says nothing about how well it matched.
    return float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
