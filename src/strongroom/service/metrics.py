"""Prometheus metrics (standard client library, a registry per service so tests can run several).

No series carries an organization id by default: /metrics is commonly scraped without
authentication, and organization ids are tenants' identifiers. An operator who wants them sets
`metrics_per_organization = true` (adds `strongroom_organization_activities{organization_id,...}`)
and should then serve metrics on a separate, private address (`metrics_listen`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SIGNING_BUCKETS: Final = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    content_type: Final = CONTENT_TYPE_LATEST

    def __init__(self, *, per_organization: bool = False) -> None:
        r = self.registry = CollectorRegistry()
        # Children of the labelled series the request path updates, by label values (bounded sets:
        # catalogued activity types and statuses, policy outcomes, curves and backends).
        self._activity_children: dict[tuple[str, str], Counter] = {}
        self._signing_children: dict[tuple[str, str], Histogram] = {}
        self._decision_children: dict[str, Counter] = {}
        self.per_organization: Counter | None = None
        if per_organization:
            self.per_organization = Counter(
                "strongroom_organization_activities",
                "Activities recorded, by organization, type and resulting status (metrics_per_organization)",
                ["organization_id", "type", "status"],
                registry=r,
            )
        self.requests = Counter(
            "strongroom_http_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.activities = Counter(
            "strongroom_activities", "Activities recorded, by type and resulting status", ["type", "status"], registry=r
        )
        self.decisions = Counter(
            "strongroom_policy_decisions", "Policy engine decisions by outcome", ["outcome"], registry=r
        )
        self.signing = Histogram(
            "strongroom_signing_seconds",
            "Time to sign (queueing included), by curve and backend",
            ["curve", "backend"],
            buckets=SIGNING_BUCKETS,
            registry=r,
        )
        self.internal_errors = Counter(
            "strongroom_internal_errors",
            "Requests answered with an internal error (a bug: each is logged with its request id)",
            registry=r,
        )
        self.notarisation_failures = Counter(
            "strongroom_notarisation_failures",
            "Reads refused because stored state did not match the token's notarisation (tampering)",
            registry=r,
        )
        self.rate_limited = Counter("strongroom_rate_limited", "Requests refused by the per-IP rate limit", registry=r)
        self.token_in_flight = Gauge(
            "strongroom_token_operations_in_flight", "PKCS#11 operations running or queued", registry=r
        )
        self.token_ready = Gauge("strongroom_token_ready", "1 when the token answers as logged in", registry=r)
        self.clock_trusted = Gauge("strongroom_clock_trusted", "1 when the trusted clock is trusted", registry=r)
        self.store_writable = Gauge(
            "strongroom_store_writable", "1 when the store (and audit log) can be written", registry=r
        )

    def bind(
        self,
        in_flight: Callable[[], int],
        token_ok: Callable[[], bool],
        clock_ok: Callable[[], bool],
        store_ok: Callable[[], bool],
    ) -> None:
        """Gauges read at scrape time."""
        self.token_in_flight.set_function(lambda: float(in_flight()))
        self.token_ready.set_function(lambda: float(token_ok()))
        self.clock_trusted.set_function(lambda: float(clock_ok()))
        self.store_writable.set_function(lambda: float(store_ok()))

    def activity(self, organization_id: str, activity_type: str, status: str) -> None:
        key = (activity_type, status)
        child = self._activity_children.get(key)
        if child is None:  # `labels` validates and locks on every call: keep each child (few label sets)
            child = self._activity_children[key] = self.activities.labels(activity_type, status)
        child.inc()
        if self.per_organization is not None:
            self.per_organization.labels(organization_id, activity_type, status).inc()

    def decision(self, outcome: str) -> None:
        child = self._decision_children.get(outcome)
        if child is None:
            child = self._decision_children[outcome] = self.decisions.labels(outcome)
        child.inc()

    def observe_signing(self, curve: str, backend: str, seconds: float) -> None:
        key = (curve, backend)
        child = self._signing_children.get(key)
        if child is None:
            child = self._signing_children[key] = self.signing.labels(curve, backend)
        child.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
