"""Prometheus metrics of a Flowdesk process, served at ``/metrics``.

Every metric is declared here, once, so that ``docs/metrics.md`` can be checked
against this module by a test. They live in the process-wide default registry:
the worker running inside ``flowdesk serve`` counts into the same registry the
server exposes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

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


# -- people: queues, agents, CSAT -----------------------------------------------------------

#: Human waits: seconds to hours.
PEOPLE_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
FIRST_AGENT_REPLY = Histogram(
    "flowdesk_first_agent_reply_seconds",
    "Time from an agent getting a conversation to their first reply, by queue.",
    ["queue"],
    buckets=PEOPLE_BUCKETS,
)
HANDLE_TIME = Histogram(
    "flowdesk_handle_seconds",
    "Time from an agent getting a conversation to resolving it, by queue.",
    ["queue"],
    buckets=PEOPLE_BUCKETS,
)
ASSIGNMENT_WAIT = Histogram(
    "flowdesk_assignment_wait_seconds",
    "Time a conversation waited in its queue until an agent got it, by queue.",
    ["queue"],
    buckets=PEOPLE_BUCKETS,
)
CSAT_RATINGS = Counter(
    "flowdesk_csat_ratings_total", "Customers' CSAT ratings, by queue and rating (1-5).", ["queue", "rating"]
)
AGENT_REPLIES = Counter("flowdesk_agent_replies_total", "Agents' replies to customers, by channel.", ["channel"])


def observe_assignment(queue: str, waited_s: float) -> None:
    """A conversation that waited ``waited_s`` in ``queue`` got an agent (automatically or taken)."""
    ASSIGNMENT_WAIT.labels(queue=queue or "").observe(max(0.0, waited_s))


def observe_first_reply(queue: str, seconds: float) -> None:
    """An agent's first reply in a conversation they got ``seconds`` ago."""
    FIRST_AGENT_REPLY.labels(queue=queue or "").observe(max(0.0, seconds))


def observe_handled(queue: str, seconds: float) -> None:
    """An agent resolved a conversation they got ``seconds`` ago."""
    HANDLE_TIME.labels(queue=queue or "").observe(max(0.0, seconds))


def observe_csat(queue: str | None, rating: int) -> None:
    """A customer rated a conversation ``rating`` (1-5)."""
    CSAT_RATINGS.labels(queue=queue or "", rating=str(rating)).inc()


def observe_agent_reply(channel: str) -> None:
    """An agent's reply was handed to ``channel``."""
    AGENT_REPLIES.labels(channel=channel).inc()


class StoreGauge(Collector):
    """A gauge family computed from the store when scraped (``read`` gives labels -> value).

    ``_name`` and ``_labelnames`` are the attributes the metrics' documentation test reads,
    as it does on prometheus_client's own metrics.
    """

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self._name = name
        self._labelnames = labelnames
        self.documentation = documentation
        self.read: Callable[[], dict[tuple[str, ...], float]] = dict

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, self.documentation, labels=list(self._labelnames))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = self._family()
        try:
            values = self.read()
        except Exception:  # a scrape must not fail because the database is briefly away
            values = {}
        for labels, value in sorted(values.items()):
            family.add_metric(list(labels), value)
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        yield self._family()


QUEUE_LENGTH = StoreGauge("flowdesk_queue_length", "Conversations waiting for an agent, by queue.", ("queue",))
QUEUE_OLDEST_WAIT = StoreGauge(
    "flowdesk_queue_oldest_wait_seconds", "How long the longest-waiting conversation has waited, by queue.", ("queue",)
)
AGENTS_ONLINE = StoreGauge(
    "flowdesk_agents", "Enabled members of each queue, by presence (online, away, offline).", ("queue", "presence")
)
for _gauge in (QUEUE_LENGTH, QUEUE_OLDEST_WAIT, AGENTS_ONLINE):
    REGISTRY.register(_gauge)


def watch_people(
    waiting: Callable[[], Mapping[str, tuple[int, datetime | None]]],
    presence: Callable[[], Mapping[tuple[str, str], int]],
) -> None:
    """Compute the queue and presence gauges with these (the store's) from now on.

    ``waiting``: queue -> (conversations waiting, since when the oldest waits);
    ``presence``: (queue, presence) -> members. A later call (a test's second app) re-points them.
    """

    def lengths() -> dict[tuple[str, ...], float]:
        return {(queue,): float(count) for queue, (count, _oldest) in waiting().items()}

    def oldest() -> dict[tuple[str, ...], float]:
        now = datetime.now(UTC)
        return {
            (queue,): max(0.0, (now - since).total_seconds()) if since is not None else 0.0
            for queue, (_count, since) in waiting().items()
        }

    QUEUE_LENGTH.read = lengths
    QUEUE_OLDEST_WAIT.read = oldest
    AGENTS_ONLINE.read = lambda: {key: float(count) for key, count in presence().items()}
