"""What a run did: counters kept while it runs, the frozen summary it returns, and the ground truth."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import msgspec


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    """The outcome of `run_simulation`.

    ``published`` counts valid MQTT messages the broker acknowledged, per kind (``weight``, ``event``,
    ``temperature``, ``footfall``, ``transaction``, ``status``); ``malformed_sent`` counts deliberately
    malformed messages per `FaultKind` value (MQTT ones once acknowledged, serial ones once written).
    ``serial_frames_written`` includes malformed frames. ``ground_truth`` is the true item count per
    shelf at the end, including shelves whose devices were silent. With till receipts on, ``transaction``
    counts each basket once however often it was resent; ``transactions_resent`` counts the resends,
    ``transactions_unconfirmed`` the baskets no receipt confirmed by the end, and ``receipts`` the
    receipts the tills got, per status.
    """

    published: Mapping[str, int]
    malformed_sent: Mapping[str, int]
    serial_frames_written: int
    serial_frames_dropped: int
    mqtt_messages_dropped: int
    reconnects: int
    shoppers: int
    picks: int
    items_picked: int
    put_backs: int
    restocks: int
    baskets: int
    simulated_seconds: float
    real_seconds: float
    ground_truth: Mapping[str, int]
    transactions_resent: int = 0
    transactions_unconfirmed: int = 0
    receipts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(slots=True)
class RunCounters:
    """Mutable tallies shared by the runner and the transports while a run is in progress."""

    published: Counter[str] = field(default_factory=Counter)
    malformed_sent: Counter[str] = field(default_factory=Counter)
    serial_frames_written: int = 0
    serial_frames_dropped: int = 0
    mqtt_messages_dropped: int = 0
    reconnects: int = 0

    def frozen_published(self) -> Mapping[str, int]:
        return MappingProxyType(dict(sorted(self.published.items())))

    def frozen_malformed(self) -> Mapping[str, int]:
        return MappingProxyType(dict(sorted(self.malformed_sent.items())))


class GroundTruth(msgspec.Struct, frozen=True):
    """The ground-truth file: true items per shelf at ``ts_ms`` (the wire clock, so it lines up with the
    daemon's readings) and at ``simulated_ms`` (the simulated clock)."""

    store_id: str
    seed: int
    ts_ms: int
    simulated_ms: int
    final: bool
    shelves: dict[str, int]


def write_ground_truth(path: Path, truth: GroundTruth) -> None:
    """Write atomically: a reader sees the previous file or this one, never half of one. Blocking."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(msgspec.json.format(msgspec.json.encode(truth), indent=2) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
