"""Prometheus metrics. Names are part of the operator contract: keep them stable."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

WEBHOOKS_RECEIVED = Counter(
    "gateway_webhooks_received_total",
    "Webhooks received, by connection and result (accepted, duplicate, rejected, quarantined).",
    ["connection", "result"],
)
WEBHOOKS_QUARANTINED = Gauge(
    "gateway_webhooks_quarantined",
    "Signed webhooks kept in quarantine because their body could not be parsed, by "
    "connection: replay them after a fix (/api/v1/quarantine).",
    ["connection"],
)
EVENTS_RECEIVED = Counter(
    "gateway_events_received_total",
    "Canonical events stored, by source connection and event type.",
    ["connection", "event_type"],
)
DELIVERY_OUTCOMES = Counter(
    "gateway_delivery_outcomes_total",
    "Delivery attempts by destination and outcome "
    "(delivered, transient, rate_limited, permanent, needs_mapping, dead, breaker_open, "
    "maintenance: the last two wait without a call or an attempt).",
    ["destination", "outcome"],
)
END_TO_END_SECONDS = Histogram(
    "gateway_end_to_end_seconds",
    "Webhook accepted → delivered in the destination system.",
    ["flow", "destination"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
ATTEMPT_SECONDS = Histogram(
    "gateway_delivery_attempt_seconds",
    "Duration of one delivery attempt (connector call).",
    ["destination"],
)
QUEUE_DEPTH = Gauge(
    "gateway_queue_depth",
    "Deliveries by destination and status (pending, in_flight, parked, held, dead).",
    ["destination", "status"],
)
BREAKER_STATE = Gauge(
    "gateway_breaker_state",
    "Circuit breaker state per destination: 0 closed, 1 half-open, 2 open.",
    ["destination"],
)
BREAKER_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}

FINDINGS = Counter(
    "gateway_findings_total",
    "Things the flow rules reported (tax differences, stock drift, refund mismatches, ...)",
    ["kind"],
)
POLLED_EVENTS = Counter(
    "gateway_polled_events_total",
    "New events read by polling a connection",
    ["connection", "stream"],
)
POLL_FAILURES = Counter(
    "gateway_poll_failures_total",
    "Polls of a connection's stream that failed (the cursor stays; the next run retries), "
    "by error class (PermanentError: a person must fix the query, credentials or role).",
    ["connection", "stream", "error_class"],
)
POLL_FAILING = Gauge(
    "gateway_poll_failing",
    "1 while a connection's stream fails to poll (since its last failed run), else 0: "
    "alert on it, a failing poll reads nothing new.",
    ["connection", "stream"],
)
HTTP_ERRORS = Counter(
    "gateway_http_errors_total",
    "HTTP requests answered with a server error (5xx: unexpected errors, database "
    "unreachable), by route template (unmatched: no route) and status.",
    ["route", "status"],
)
CONCURRENCY_SLOTS_IN_USE = Gauge(
    "gateway_concurrency_slots_in_use",
    "Calls in flight holding a concurrency slot, by slot (e.g. netsuite:<account>), in this "
    "process: sum over processes for the account's use of its concurrency limit.",
    ["slot"],
)
CONCURRENCY_SLOTS = Counter(
    "gateway_concurrency_slots_total",
    "Slot requests by outcome: acquired (shared by every process), local (Redis "
    "unreachable: this process's own limit only), timeout (none came free in time: the "
    "call is re-queued, no attempt used).",
    ["slot", "outcome"],
)
CONCURRENCY_WAIT_SECONDS = Histogram(
    "gateway_concurrency_slot_wait_seconds",
    "Time a call waited for a concurrency slot.",
    ["slot"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HTTP_REQUEST_SECONDS = Histogram(
    "gateway_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template (unmatched: no route); "
    "route /webhooks/{connection_id} is webhook ingest (Shopify gives up after 5 s).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 3, 4, 5, 10),
)
QUEUE_OLDEST_AGE = Gauge(
    "gateway_queue_oldest_age_seconds",
    "Age (since it was created) of the oldest delivery by destination and status, 0 when "
    "there is none: how long the oldest pending one has waited.",
    ["destination", "status"],
)
FINDINGS_LAST_24H = Gauge(
    "gateway_findings_last_24h",
    "Findings recorded in the last 24 hours, by kind, from the database (every process's).",
    ["kind"],
)
WORKERS = Gauge(
    "gateway_workers",
    "Delivering processes seen in the last 15 s (heartbeats in the database), by state "
    "(consuming, starting, queue_unreachable, stopping): none consuming, nothing is delivered.",
    ["state"],
)
CONNECTION_IN_MAINTENANCE = Gauge(
    "gateway_connection_in_maintenance",
    "1 while a connection is in a maintenance window (config file or API), else 0: its "
    "deliveries wait without using attempts and its polls are skipped until the window ends.",
    ["connection"],
)

INCIDENTS_OPEN = Gauge(
    "gateway_incidents_open",
    "1 while an incident is open (a silent flow, webhooks the store stopped sending, a breaker "
    "open too long, a failing or empty poll, new dead letters, an old pending delivery), by "
    "kind, connection and flow (the poll stream for poll kinds): GET /api/v1/incidents.",
    ["kind", "connection", "flow"],
)
NOTIFICATIONS = Counter(
    "gateway_notifications_total",
    "Incident messages to notification sinks, by sink, message (firing, resolved, test) and "
    "result (sent, failed: retried with backoff).",
    ["sink", "message", "result"],
)

DATABASE_GAUGES_FRESH = Gauge(
    "gateway_metrics_database_fresh",
    "1 when this scrape read the database gauges; 0 when the database did not answer in "
    "time and they show their last values",
)

# Read from the database at each scrape of the API's /metrics (app.observability.snapshot),
# so right whatever process acted. A worker's own copy is only what it last saw itself (stale
# once another process changes the state), so its metrics port leaves these out.
DATABASE_GAUGES = frozenset(
    {
        "gateway_queue_depth",
        "gateway_queue_oldest_age_seconds",
        "gateway_breaker_state",
        "gateway_poll_failing",
        "gateway_webhooks_quarantined",
        "gateway_findings_last_24h",
        "gateway_workers",
        "gateway_incidents_open",
        "gateway_connection_in_maintenance",
        "gateway_metrics_database_fresh",
    }
)


class ProcessMetrics(Collector):
    """The default registry without ``DATABASE_GAUGES``: what a worker serves."""

    def collect(self) -> Iterator[Metric]:
        for family in REGISTRY.collect():
            if family.name not in DATABASE_GAUGES:
                yield family
