"""The request histogram kept as plain numbers renders as Prometheus expects."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sealbox.server.metrics import Metrics


def _families(m: Metrics) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(m.render().decode())}


def test_counts_buckets_and_sums() -> None:
    m = Metrics(scope_labels=False, cache_counts=lambda: (3, 1))
    key = ("GET", "/v1/secrets/{project}/{env}/{name}", "200")
    for seconds in (0.0004, 0.001, 0.001, 0.3, 9.0):  # 0.001 sits on a bound: le includes it
        m.observe(key, seconds)
    m.observe(("GET", "/v1/x", "404"), 0.002)
    fams = _families(m)
    samples = {
        (s.name, s.labels.get("le"), s.labels.get("status")): s.value
        for s in fams["sealbox_http_request_duration_seconds"].samples  # type: ignore[attr-defined]
    }
    assert samples[("sealbox_http_request_duration_seconds_bucket", "0.0005", "200")] == 1
    assert samples[("sealbox_http_request_duration_seconds_bucket", "0.001", "200")] == 3
    assert samples[("sealbox_http_request_duration_seconds_bucket", "0.25", "200")] == 3
    assert samples[("sealbox_http_request_duration_seconds_bucket", "0.5", "200")] == 4
    assert samples[("sealbox_http_request_duration_seconds_bucket", "+Inf", "200")] == 5
    assert samples[("sealbox_http_request_duration_seconds_count", None, "200")] == 5
    assert abs(samples[("sealbox_http_request_duration_seconds_sum", None, "200")] - 9.3024) < 1e-9
    counts = {
        s.labels["status"]: s.value
        for s in fams["sealbox_http_requests"].samples  # type: ignore[attr-defined]
        if s.name == "sealbox_http_requests_total"
    }
    assert counts == {"200": 5, "404": 1}


def test_scope_labels_are_optional_columns() -> None:
    m = Metrics(scope_labels=True, cache_counts=lambda: (0, 0))
    m.observe(("GET", "/v1/secrets/{project}/{env}/{name}", "200", "payments", "prod"), 0.01)
    text = m.render().decode()
    assert 'env="prod",method="GET",project="payments"' in text
