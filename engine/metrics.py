"""Prometheus metrics of a Flowdesk process, served at ``/metrics``.

Every metric is declared here, once, so that ``docs/metrics.md`` can be checked
against this module by a test. They live in the process-wide default registry:
the worker running inside ``flowdesk serve`` counts into the same registry the
server exposes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Latencies of a chat: a few milliseconds to a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

MESSAGES_IN = Counter("flowdesk_messages_in_total", "Customer messages accepted, by channel.", ["channel"])
MESSAGES_OUT = Counter(
    "flowdesk_messages_out_total", "Replies handed to a channel (or stored for an offline visitor).", ["channel"]
)
DELIVERY_FAILURES = Counter(
    "flowdesk_delivery_failures_total",
    "Failed sends, by channel and the vendor's error code (429, 5xx, 131047, window_closed ...).",
    ["channel", "code"],
)
DELIVERY_LATENCY = Histogram(
    "flowdesk_delivery_seconds", "Time a channel took to send one reply (the vendor's answer).", ["channel"]
)
DELIVERY_STATUSES = Counter(
    "flowdesk_delivery_statuses_total",
    "Delivery statuses vendors reported (sent, delivered, read, failed).",
    ["channel", "status"],
)
WEBHOOK_REJECTED = Counter(
    "flowdesk_webhook_rejected_total",
    "Webhook requests refused or not taken, by channel and reason (signature, payload, too_large, unavailable ...).",
    ["channel", "reason"],
)
WEBHOOK_IGNORED = Counter(
    "flowdesk_webhook_ignored_total",
    "Webhook events received and deliberately not acted on (edited_message, unknown_event ...).",
    ["channel", "reason"],
)
WEBHOOK_LATENCY = Histogram(
    "flowdesk_webhook_seconds",
    "Time from a webhook request's body to its answer (messages durably accepted).",
    ["channel"],
)
STEPS = Counter("flowdesk_step_executions_total", "Flow steps run, by flow and step kind.", ["flow", "kind"])
STEP_DURATION = Histogram(
    "flowdesk_step_duration_seconds",
    "Time a step took, from starting it to its result (AI and HTTP steps include the call).",
    ["flow", "kind"],
    buckets=LATENCY_BUCKETS,
)
RELOADS = Counter("flowdesk_flow_reloads_total", "Flow directory reloads, by outcome (ok or failed).", ["outcome"])
FLOW_ERRORS = Gauge(
    "flowdesk_flow_files_invalid", "Flow files whose last edit did not validate (last good revision live)."
)
SETTINGS_RELOADS = Counter(
    "flowdesk_settings_reloads_total", "Settings file reloads, by outcome (ok or failed).", ["outcome"]
)
SETTINGS_INVALID = Gauge(
    "flowdesk_settings_file_invalid",
    "1 while the settings file's last edit did not validate (last good settings live).",
)
ACTIVE_SOCKETS = Gauge("flowdesk_webchat_sockets", "Open web-chat WebSocket connections on this node.")
AGENT_SOCKETS = Gauge("flowdesk_agent_sockets", "Open agents' /ws/agent connections on this node.")
AGENT_EVENTS = Counter(
    "flowdesk_agent_events_sent_total", "Frames sent on agents' sockets on this node, by kind.", ["kind"]
)
AGENT_SOCKETS_DROPPED = Counter(
    "flowdesk_agent_sockets_dropped_total",
    "Agents' sockets closed by the server, by reason (slow, stalled, disabled).",
    ["reason"],
)
UPDATE_LATENCY = Histogram(
    "flowdesk_update_roundtrip_seconds",
    "Time from sending a message to its conversation until it was durably accepted.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
REJECTED_FRAMES = Counter(
    "flowdesk_webchat_rejected_total", "Web-chat frames refused, by reason (rate_limited, too_large, ...).", ["reason"]
)

#: AI answers take from milliseconds (offline FAQ) to a minute (a slow model).
AI_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
AI_REQUESTS = Counter(
    "flowdesk_ai_requests_total", "Calls to AI providers, by provider and outcome.", ["provider", "outcome"]
)
AI_LATENCY = Histogram(
    "flowdesk_ai_latency_seconds", "Time of one call to an AI provider.", ["provider"], buckets=AI_LATENCY_BUCKETS
)
AI_TOKENS = Counter(
    "flowdesk_ai_tokens_total",
    "Tokens AI vendors reported, by provider, model and kind.",
    ["provider", "model", "kind"],
)
AI_BREAKER_STATE = Gauge(
    "flowdesk_ai_breaker_state", "Circuit breaker of an AI provider: 0 closed, 1 open, 2 half-open.", ["provider"]
)
AI_CHAINS = Counter(
    "flowdesk_ai_chain_outcomes_total", "AI chain runs, by flow, chain and outcome.", ["flow", "chain", "outcome"]
)

PIPELINE_BLOCKED = Counter(
    "flowdesk_pipeline_blocked_total",
    "Messages a pipeline stage stopped, by processor and direction.",
    ["processor", "direction"],
)
PIPELINE_ERRORS = Counter(
    "flowdesk_pipeline_errors_total",
    "Processors that failed on a message (then on_error applied).",
    ["processor", "direction"],
)


class ConversationsByStatus(Collector):
    """``flowdesk_conversations{status}``, counted in the store when scraped."""

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self.count = count

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "flowdesk_conversations", "Conversations in the store, by status.", labels=["status"]
        )
        try:
            counts = self.count()
        except Exception:  # a scrape must not fail because the database is briefly away
            counts = {}
        for status in ("open", "handoff", "ended"):
            family.add_metric([status], counts.get(status, 0))
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Describing without collecting keeps registration from querying the database.
        yield GaugeMetricFamily("flowdesk_conversations", "Conversations in the store, by status.", labels=["status"])


#: Registered once per process; a later call (a test's second app) re-points it.
CONVERSATIONS = ConversationsByStatus(dict)
REGISTRY.register(CONVERSATIONS)


def watch_conversations(count: Callable[[], dict[str, int]]) -> None:
    """Count conversations by status with ``count`` (the store's) from now on."""
    CONVERSATIONS.count = count
