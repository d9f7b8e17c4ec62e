"""Prometheus metrics on ``/metrics``: ingest rate, lag, stream lengths, pending, dead letters, commits."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_COUNTERS = {
    "ingest_transactions": "transactions received from Geyser",
    "ingest_records": "records (swaps, events, transfers) handed to the swap streams",
    "ingest_reconnects": "Geyser reconnects",
    "ingest_estimated_slots": "slots handed on with an estimated block time",
    "swaps_committed": "swaps committed to PostgreSQL (including re-deliveries)",
    "alerts": "alerts fired",
    "detect_errors": "detect batches that failed and will be retried",
    "redis_errors": "Redis calls retried after an error",
    "engine_rebuilds": "detect engines rebuilt from the store after a batch failed to commit",
    "ingest_gaps": "resumes the provider could not serve from the last handed-on slot",
    "ingest_gap_slots": "slots lost in those gaps (their swaps are missing)",
}
_GAUGES = {
    "ingest_last_slot": "last slot seen in a BlockMeta",
    "ingest_lag_seconds": "wall clock minus the last block time",
    "partitions_held": "swap partitions this runner holds",
    "stream_length": "entries in the swap streams",
    "stream_pending": "entries delivered but not acknowledged",
    "stream_lag": "entries not yet delivered to detect",
    "stream_dead": "entries in the dead-letter streams",
}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.counters = {k: Counter(f"pocketwatcher_{k}", d, registry=self.registry) for k, d in _COUNTERS.items()}
        self.gauges = {k: Gauge(f"pocketwatcher_{k}", d, registry=self.registry) for k, d in _GAUGES.items()}
        self.commit = Histogram("pocketwatcher_commit_seconds", "detect batch: receipt to commit",
                                registry=self.registry,
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.latency_hist = Histogram("pocketwatcher_receipt_to_commit_seconds",
                                      "a swap's transaction received → its swap and alerts committed",
                                      registry=self.registry,
                                      buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
        self.latencies: list[float] = []  # recent samples, for percentiles in benchmarks
        self._server = None

    def latency(self, values: list[float]) -> None:
        for v in values:
            self.latency_hist.observe(v)
        self.latencies.extend(values)
        if len(self.latencies) > 200_000:
            del self.latencies[:100_000]

    def inc(self, name: str, n: float = 1) -> None:
        self.counters[name].inc(n)

    def set(self, name: str, v: float) -> None:
        self.gauges[name].set(v)

    def observe(self, name: str, v: float) -> None:
        self.commit.observe(v)

    def value(self, name: str) -> float:
        m = self.counters.get(name) or self.gauges.get(name)
        return m._value.get()  # noqa: SLF001 - for tests and the idle check

    def serve(self, port: int) -> None:
        self._server, _thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
