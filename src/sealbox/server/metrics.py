"""Prometheus metrics of one server process (``GET /metrics``).

Routes are labelled by their *template* (``/v1/secrets/{project}/{env}/{name}``), never by
the concrete path: a secret's name never becomes a label. With ``metrics_scope_labels``
the secret routes also carry ``project`` and ``env`` labels (never the name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
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


class Metrics:
    """Request counts, latency histograms, storage errors and token-cache hits."""

    def __init__(self, *, scope_labels: bool, cache_counts: Callable[[], tuple[int, int]]) -> None:
        self.scope_labels = scope_labels
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["method", "route", "status"]
        if scope_labels:
            labels += ["project", "env"]
        self._requests = Counter(
            "sealbox_http_requests", "HTTP requests answered", labels, registry=self.registry
        )
        self._latency = Histogram(
            "sealbox_http_request_duration_seconds",
            "Time to answer an HTTP request",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._storage_errors = Counter(
            "sealbox_storage_errors",
            "Requests that failed because storage was unavailable",
            registry=self.registry,
        )
        self.registry.register(_CacheCollector(cache_counts))
        # NOTE: labels() takes a lock and builds a key each call; children are cached here.
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def observe(self, key: tuple[str, ...], seconds: float) -> None:
        children = self._children.get(key)
        if children is None:
            if len(self._children) > 10_000:
                self._children.clear()
            children = (self._requests.labels(*key), self._latency.labels(*key))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def storage_error(self) -> None:
        self._storage_errors.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
