"""Activities of a conversation: everything that touches the world.

Retries are Temporal's: clients run with their own retries off, and an activity
raises a retryable error for a transient failure and a non-retryable
``ApplicationError`` for a permanent one. Secrets are resolved here, from the
worker's environment, and never returned: inputs and results land in history.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from engine.ai.gateway import AIGateway
from engine.channels.errors import ChannelError
from engine.channels.types import Channel
from engine.errors import FlowdeskError
from engine.flow import expr
from engine.flow.events import CallAI, to_dict
from engine.message_log import RecordInput
from engine.metrics import DELIVERY_FAILURES, DELIVERY_LATENCY, MESSAGES_OUT
from engine.pipeline.runner import Pipelines
from engine.runtime.deliveries import delivered, failure_code, outbound_message, retry_policy_error, within_window
from engine.runtime.failures import Failure
from engine.runtime.inbound import run_inbound, run_outbound
from engine.runtime.ports import MessageLog
from engine.runtime.revisions import FlowCatalog
from engine.runtime.types import AIInput, Delivered, DeliverInput, HttpInput, Prepared, PrepareInput
from engine.secrets import SecretLookup, missing_secret_message

#: Response bodies larger than this are cut (a flow stores them in its variables).
MAX_BODY_BYTES = 256_000

#: Seconds between heartbeats of a running AI or HTTP call (effects.py gives those
#: activities a heartbeat timeout a few times this).
HEARTBEAT_EVERY = 1.0


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat while the body runs, so that Temporal notices a dead worker in seconds.

    Without heartbeats a call lost with its worker is retried only after its
    start-to-close timeout (tens of seconds for an AI chain). Local activities
    cannot heartbeat (and die with the workflow task anyway): nothing is sent then.
    """
    if activity.info().is_local:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class MissingSecret(FlowdeskError):
    """A flow's ``secret('NAME')`` has no value on this worker."""


class ConversationActivities:
    """The activities of one worker, with the dependencies they share."""

    def __init__(
        self,
        catalog: FlowCatalog,
        *,
        channels: Mapping[str, Channel],
        log: MessageLog,
        secrets: SecretLookup = os.environ.get,
        http: httpx.AsyncClient | None = None,
        knowledge_dir: Path | None = None,
        ai_profiles: Mapping[str, Any] | None = None,
        pipelines: Pipelines | None = None,
    ) -> None:
        self.catalog = catalog
        self.pipelines = pipelines or Pipelines()
        # Knowledge files (`faq` providers) are named relative to the flows directory.
        self.ai = AIGateway(profiles=ai_profiles, environ=SecretsView(secrets), knowledge_dir=knowledge_dir)
        self.channels = dict(channels)
        self.log = log
        self.secrets = secrets
        # One client for every call; its own retries stay off: Temporal retries.
        self.http = http or httpx.AsyncClient(follow_redirects=False, transport=httpx.AsyncHTTPTransport(retries=0))

    @activity.defn(name="flowdesk.prepare")
    async def prepare(self, data: PrepareInput) -> Prepared:
        """Inbound pipeline of the message, and the live revisions the workflow asked about."""
        flow = self.catalog.compiled.get(data.flow, data.revision)
        # Processors are CPU work: in a thread, so that a slow one does not stall the worker's loop.
        run = functools.partial(
            run_inbound, self.pipelines, flow, data.message, conversation_id=data.conversation_id, key=data.key
        )
        message, result = await asyncio.to_thread(run) if flow.inbound else run()
        text = message["text"]
        if data.record is not None:
            await self.log.write(replace(data.record, text=text))
        elif text != data.message.get("text"):
            # Logged by the server as it arrived: the log keeps it as the flow sees it.
            await self.log.write(
                RecordInput(
                    data.conversation_id,
                    "in",
                    text,
                    str(data.message.get("channel", "")),
                    str(data.message.get("id", "")),
                    call_time(),
                    replaces_text=True,
                )
            )
        return Prepared(
            message=message,
            blocked=result.blocked,
            reply=result.reply,
            live=self.catalog.live_revisions(data.flows),
            settings=self.catalog.live_settings.revision,
        )

    @activity.defn(name="flowdesk.record")
    async def record(self, entry: RecordInput) -> None:
        """Write one message (or delivery outcome) to the conversation's log."""
        await self.log.write(entry)

    @activity.defn(name="flowdesk.deliver")
    async def deliver(self, data: DeliverInput) -> Delivered:
        """Send one message through its channel; a repeated key is not sent twice."""
        channel = self.channels.get(data.channel)
        if channel is None:
            message = f"no channel {data.channel!r} on this worker"
            raise ApplicationError(message, type=Failure.NO_CHANNEL, non_retryable=True)
        flow = self.catalog.compiled.find(data.flow, data.revision)
        if flow is not None and flow.outbound:
            outbound = await asyncio.to_thread(
                run_outbound,
                self.pipelines,
                flow,
                data.text,
                conversation_id=data.conversation_id,
                message_id=data.key,
                channel=data.channel,
            )
            if outbound.blocked is not None:
                await self.log.write(self._reply_entry(data, status="blocked", detail=outbound.blocked))
                return Delivered(data.key, "blocked")
            data = replace(data, text=outbound.message.text)
        sent_before = await self._sent_before(data, channel)
        if sent_before is not None:
            # The vendor took this delivery before (a retry after the log write failed, a
            # re-run after a crash): never send it again.
            return Delivered(data.key, "duplicate", channel_message_id=sent_before)
        started = time.perf_counter()
        try:
            ready = within_window(outbound_message(data), channel.capabilities, datetime.now(UTC))
            receipt = await channel.send(ready)
        except ChannelError as exc:
            DELIVERY_FAILURES.labels(data.channel, failure_code(exc)).inc()
            error = retry_policy_error(exc)
            if error is None:
                raise
            raise error from None
        DELIVERY_LATENCY.labels(data.channel).observe(time.perf_counter() - started)
        MESSAGES_OUT.labels(data.channel).inc()
        result = delivered(data.key, receipt)
        if result.logged:
            return result
        # Logged here rather than by another activity: one round trip per reply.
        await self.log.write(
            replace(self._reply_entry(data, status="sent"), channel_message_id=receipt.channel_message_id or "")
        )
        return result

    async def _sent_before(self, data: DeliverInput, channel: Channel) -> str | None:
        """The vendor's id of this delivery if a vendor took it before (the store records it)."""
        lookup = getattr(self.log, "sent_reply", None)
        if lookup is None or channel.capabilities.held_by_node:
            return None  # a log that keeps no vendor ids; web chat logs and dedupes its replies itself
        found = await asyncio.to_thread(lookup, data.conversation_id, data.key)
        return str(found) if found else None

    @staticmethod
    def _reply_entry(data: DeliverInput, *, status: str, detail: str = "") -> RecordInput:
        return RecordInput(
            conversation_id=data.conversation_id,
            direction="out",
            text=data.text,
            channel=data.channel,
            message_id=data.key,
            at=data.at or call_time(),
            status=status,
            sender=data.sender,
            flow=data.flow,
            revision=data.revision,
            detail=detail,
            meta=data.meta,
        )

    @activity.defn(name="flowdesk.call_ai")
    async def call_ai(self, data: AIInput) -> dict[str, Any]:
        """Run an AI chain; a chain that fails as a whole is a result, not an exception."""
        fields = {k: v for k, v in data.call.items() if k != "kind"}
        tuples = {"history": tuple(fields.get("history", ())), "context": tuple(fields.get("context", ()))}
        call = CallAI(**{**fields, **tuples, "intents": _intents(fields)})
        flow = self.catalog.compiled.get(call.flow, call.revision)
        async with heartbeating():
            result = await self.ai.answer(call, flow, call_time(), conversation_id=data.conversation_id)
        return to_dict(result)

    @activity.defn(name="flowdesk.call_http")
    async def call_http(self, data: HttpInput) -> dict[str, Any]:
        """Make an HTTP request; 2xx-4xx are results, network errors and 5xx/429 are retried."""
        call = data.call
        try:
            request = self._request(call)
        except MissingSecret as exc:
            # A setup mistake, not a crash: the workflow logs it once with its flow and
            # step, and takes the step's on_error path; BENIGN keeps the SDK's traceback out.
            raise ApplicationError(
                str(exc), type=Failure.SECRET_MISSING, non_retryable=True, category=ApplicationErrorCategory.BENIGN
            ) from None
        try:
            async with heartbeating():
                response = await self.http.send(request)
        except httpx.TimeoutException:
            raise ApplicationError("timed out", type=Failure.HTTP_TIMEOUT) from None
        except httpx.HTTPError as exc:
            # The exception text can hold the URL, and the URL a secret: name the failure only.
            raise ApplicationError(f"request failed ({type(exc).__name__})", type=Failure.HTTP_ERROR) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ApplicationError(f"HTTP {response.status_code}", type=Failure.HTTP_STATUS)
        return {"status": response.status_code, "body": _body(response)}

    def _request(self, call: Mapping[str, Any]) -> httpx.Request:
        resolve = self._resolver()
        kwargs: dict[str, Any] = {
            "headers": {k: resolve(v) for k, v in call.get("headers", ())},
            "params": {k: resolve(v) for k, v in call.get("query", ())},
        }
        if call.get("has_json"):
            kwargs["json"] = expr.map_strings(call.get("json_body"), resolve)
        elif call.get("body") is not None:
            kwargs["content"] = resolve(call["body"]).encode("utf-8")
        timeout = httpx.Timeout((call.get("timeout_ms") or 10_000) / 1000)
        return self.http.build_request(call.get("method", "GET"), resolve(call["url"]), timeout=timeout, **kwargs)

    def _resolver(self) -> Callable[[str], str]:
        def resolve(text: str) -> str:
            def value(match: Any) -> str:
                name = match.group(1)
                secret = self.secrets(name)
                if secret is None:
                    raise MissingSecret(missing_secret_message(name))
                return secret

            return expr.SECRET_MARKER_RE.sub(value, text)

        return resolve


class SecretsView(Mapping[str, str]):
    """A secret lookup seen as a read-only mapping (what settings' ``${env:NAME}`` resolve against)."""

    def __init__(self, lookup: SecretLookup) -> None:
        self.lookup = lookup

    def __getitem__(self, name: str) -> str:
        value = self.lookup(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())  # secrets are looked up by name, never listed

    def __len__(self) -> int:
        return 0


def call_time() -> str:
    """Now, for results made inside an activity (activities may read the clock)."""
    return datetime.now(UTC).isoformat()


def _intents(call: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(examples)) for name, examples in call.get("intents", ()))


def _body(response: httpx.Response) -> Any:
    content = response.content[:MAX_BODY_BYTES]
    if "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(content)
        except ValueError:
            pass
    return content.decode(response.encoding or "utf-8", errors="replace")
