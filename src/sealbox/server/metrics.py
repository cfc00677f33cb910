"""Prometheus metrics of one server process (``GET /metrics``).

Routes are labelled by their *template* (``/v1/secrets/{project}/{env}/{name}``), never by
the concrete path: a secret's name never becomes a label. With ``metrics_scope_labels``
the secret routes also carry ``project`` and ``env`` labels (never the name).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _CacheCollector(Collector):
    """Token-cache hits and misses, read from the cache's own counters at scrape time."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        hits, misses = self._read()
        family = CounterMetricFamily(
            "sealbox_token_cache",
            "Token resolutions served from the cache or not",
            labels=["result"],
        )
        family.add_metric(["hit"], hits)
        family.add_metric(["miss"], misses)
        yield family


class _RequestCollector(Collector):
    """Request counts and latency histograms, kept as plain numbers by :class:`Metrics`.

    NOTE: prometheus_client's ``Counter.inc`` and ``Histogram.observe`` each take a lock
    and walk the buckets in Python: about 4 µs a request. The server observes on its one
    event-loop thread, so :meth:`Metrics.observe` only adds to lists, and the families are
    built here at scrape time.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        labels = self._metrics.labels
        requests = CounterMetricFamily(
            "sealbox_http_requests", "HTTP requests answered", labels=labels
        )
        latency = HistogramMetricFamily(
            "sealbox_http_request_duration_seconds",
            "Time to answer an HTTP request",
            labels=labels,
        )
        bounds = [*(repr(b) for b in BUCKETS), "+Inf"]
        for key, (count, total, counts) in list(self._metrics.series.items()):
            requests.add_metric(list(key), count)
            cumulative = list(itertools.accumulate(counts))
            latency.add_metric(list(key), list(zip(bounds, cumulative, strict=True)), total)
        yield requests
        yield latency


class _AuditCollector(Collector):
    """Audit batches: group-commit flushes (PostgreSQL) and spool drains (SQLite)."""

    def __init__(self, read: Callable[[], tuple[int, ...]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        flushes, events, busy, drains, drained, errors, spooled = self._read()
        yield CounterMetricFamily(
            "sealbox_audit_flushes", "Audit batches committed (one transaction each)", flushes
        )
        yield CounterMetricFamily(
            "sealbox_audit_flushed_requests",
            "Requests whose audit events those batches held",
            events,
        )
        yield CounterMetricFamily(
            "sealbox_audit_busy_retries",
            "Batches and drains retried because another writer held the database",
            busy,
        )
        yield CounterMetricFamily(
            "sealbox_audit_drains", "Spool drains into the database (SQLite)", drains
        )
        yield CounterMetricFamily(
            "sealbox_audit_drained_events", "Spooled events stored by those drains", drained
        )
        yield CounterMetricFamily(
            "sealbox_audit_drain_errors", "Drains that failed (the events stay spooled)", errors
        )
        yield GaugeMetricFamily(
            "sealbox_audit_spooled_events", "Events spooled and not yet in the database", spooled
        )


class _RotationCollector(Collector):
    """Rotations waiting on a failure and the age of the oldest due one, read from the
    vault at most every :attr:`EVERY` seconds (a scrape must not walk every secret)."""

    EVERY = 30.0

    def __init__(self, read: Callable[[], tuple[int, float]]) -> None:
        self._read = read
        self._last: tuple[float, tuple[int, float]] | None = None

    def describe(self) -> Iterator[Metric]:
        # NOTE: the registry describes a collector when it is registered; without this
        # it would collect then, and the first scrape would show that cached reading.
        yield GaugeMetricFamily("sealbox_rotations_failed", "")
        yield GaugeMetricFamily("sealbox_rotation_oldest_due_seconds", "")

    def collect(self) -> Iterator[Metric]:
        import time

        now = time.monotonic()
        if self._last is None or now - self._last[0] >= self.EVERY:
            try:
                self._last = (now, self._read())
            except Exception:  # NOTE: a scrape never fails for a rotation's sake
                if self._last is None:
                    return
        failed, oldest = self._last[1]
        yield GaugeMetricFamily(
            "sealbox_rotations_failed", "Rotations that failed or wait on the upstream", failed
        )
        yield GaugeMetricFamily(
            "sealbox_rotation_oldest_due_seconds",
            "How long the oldest due rotation has waited (0: none is due)",
            oldest,
        )


class _LeaseCollector(Collector):
    """Live leases of dynamic credentials per role, and the age of each role's oldest,
    read from storage at scrape time (a scrape during an outage yields none of them)."""

    def __init__(self, read: Callable[[], dict[str, tuple[int, str | None]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        from datetime import UTC, datetime

        from sealbox.errors import SealboxError

        try:
            counts = self._read()
        except SealboxError:
            return
        now = datetime.now(UTC)
        live = GaugeMetricFamily(
            "sealbox_leases", "Live leases of dynamic credentials", labels=["role"]
        )
        oldest = GaugeMetricFamily(
            "sealbox_lease_oldest_age_seconds",
            "Age of the oldest live lease of the role",
            labels=["role"],
        )
        for role, (count, first) in sorted(counts.items()):
            live.add_metric([role], count)
            if first is not None:
                age = (now - datetime.fromisoformat(first)).total_seconds()
                oldest.add_metric([role], max(0.0, age))
        yield live
        yield oldest


class Metrics:
    """Request counts, latency histograms, storage errors and token-cache hits."""

    def __init__(
        self,
        *,
        scope_labels: bool,
        cache_counts: Callable[[], tuple[int, int]],
        audit_counts: Callable[[], tuple[int, ...]] | None = None,
        rotation_counts: Callable[[], tuple[int, float]] | None = None,
        lease_counts: Callable[[], dict[str, tuple[int, str | None]]] | None = None,
    ) -> None:
        self.scope_labels = scope_labels
        self.registry = CollectorRegistry(auto_describe=True)
        self.labels = ["method", "route", "status"]
        if scope_labels:
            self.labels += ["project", "env"]
        #: label values -> [count, sum of seconds, count per bucket (the last is +Inf)]
        self.series: dict[tuple[str, ...], list[Any]] = {}
        self._storage_errors = Counter(
            "sealbox_storage_errors",
            "Requests that failed because storage was unavailable",
            registry=self.registry,
        )
        self.registry.register(_RequestCollector(self))
        self.registry.register(_CacheCollector(cache_counts))
        if audit_counts is not None:
            self.registry.register(_AuditCollector(audit_counts))
        if rotation_counts is not None:
            self.registry.register(_RotationCollector(rotation_counts))
        if lease_counts is not None:
            self.registry.register(_LeaseCollector(lease_counts))

    def observe(self, key: tuple[str, ...], seconds: float) -> None:
        series = self.series.get(key)
        if series is None:
            if len(self.series) > 10_000:
                self.series.clear()
            series = self.series[key] = [0, 0.0, [0] * (len(BUCKETS) + 1)]
        series[0] += 1
        series[1] += seconds
        series[2][bisect.bisect_left(BUCKETS, seconds)] += 1

    def storage_error(self) -> None:
        self._storage_errors.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
