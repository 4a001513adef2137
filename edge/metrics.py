"""A small Prometheus text-format registry: counters, gauges and histograms with labels.

Written rather than depended on: the daemon needs a dozen series and the exposition format, and
prometheus_client's process-global registry gets in the way of running several daemons in one test.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from typing import TypeVar


def _fmt_labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labels = labels

    def samples(self) -> Iterable[str]:
        raise NotImplementedError

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}", *self.samples()]
        return "\n".join(lines)


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self._values[label_values] = self._values.get(label_values, 0.0) + amount

    def value(self, *label_values: str) -> float:
        return self._values.get(label_values, 0.0)

    def total(self) -> float:
        return sum(self._values.values())

    def items(self) -> list[tuple[tuple[str, ...], float]]:
        return sorted(self._values.items())

    def samples(self) -> Iterable[str]:
        if not self.labels and not self._values:
            yield f"{self.name} 0"
        for values, count in sorted(self._values.items()):
            yield f"{self.name}{_fmt_labels(self.labels, values)} {_num(count)}"


class Gauge(_Metric):
    kind = "gauge"

    def __init__(
        self, name: str, help_text: str, labels: tuple[str, ...] = (), read: Callable[[], float] | None = None
    ) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[tuple[str, ...], float] = {}
        self._read = read

    def set(self, value: float, *label_values: str) -> None:
        self._values[label_values] = value

    def value(self, *label_values: str) -> float:
        if self._read is not None and not label_values:
            return self._read()
        return self._values.get(label_values, 0.0)

    def samples(self) -> Iterable[str]:
        if self._read is not None:
            yield f"{self.name} {_num(self._read())}"
            return
        if not self.labels and not self._values:
            yield f"{self.name} 0"
        for values, value in sorted(self._values.items()):
            yield f"{self.name}{_fmt_labels(self.labels, values)} {_num(value)}"


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.buckets, value)] += 1
        self._sum += value
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def samples(self) -> Iterable[str]:
        cumulative = 0
        for bound, count in zip((*self.buckets, math.inf), self._counts, strict=True):
            cumulative += count
            yield f'{self.name}_bucket{{le="{_num(bound)}"}} {cumulative}'
        yield f"{self.name}_sum {_num(self._sum)}"
        yield f"{self.name}_count {self._count}"


M = TypeVar("M", bound="_Metric")


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: M) -> M:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        return "\n".join(m.render() for m in self._metrics.values()) + "\n"


class IngestMetrics:
    """Every series the daemon exposes at /metrics, in one place so the docs test can list them."""

    def __init__(self, queue_depth: Callable[[], float] = lambda: 0.0) -> None:
        r = self.registry = Registry()
        self.received = r.register(
            Counter("storeedge_messages_received_total", "Messages received, by transport.", ("source",))
        )
        self.stored = r.register(
            Counter("storeedge_messages_stored_total", "Readings committed to SQLite, by kind.", ("kind",))
        )
        self.rejected = r.register(
            Counter("storeedge_messages_rejected_total", "Inputs quarantined, by reason.", ("reason",))
        )
        self.suspicious = r.register(
            Counter(
                "storeedge_suspicious_total",
                "Readings stored but flagged for staff (GET /api/v1/suspicious), by reason.",
                ("reason",),
            )
        )
        self.duplicates = r.register(
            Counter("storeedge_messages_duplicate_total", "Readings dropped as (device, seq, ts) duplicates.")
        )
        self.batch_seconds = r.register(
            Histogram(
                "storeedge_batch_commit_seconds",
                "Time to apply and commit one write batch.",
                (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            )
        )
        self.batch_size = r.register(
            Histogram(
                "storeedge_batch_size", "Items per committed batch.", (1, 5, 10, 50, 100, 500, 1000, 5000)
            )
        )
        self.queue_depth = r.register(
            Gauge("storeedge_ingest_queue_depth", "Items waiting for the writer.", read=queue_depth)
        )
        self.write_errors = r.register(
            Counter("storeedge_write_errors_total", "Batches that failed to commit and were retried.")
        )
        self.mqtt_connected = r.register(
            Gauge("storeedge_mqtt_connected", "1 while connected to the broker.")
        )
        self.mqtt_connects = r.register(
            Counter("storeedge_mqtt_connects_total", "Successful connections to the broker.")
        )
        self.serial_open = r.register(
            Gauge("storeedge_serial_port_open", "1 while the serial port is open.", ("port",))
        )
        self.task_restarts = r.register(
            Counter("storeedge_task_restarts_total", "Supervised tasks restarted after a failure.", ("task",))
        )
        self.housekeeping_deleted = r.register(
            Counter(
                "storeedge_housekeeping_deleted_total", "Rows removed by retention, by table.", ("table",)
            )
        )
