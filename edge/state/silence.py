"""Silent sensors: a device that has sent nothing for N times its reporting period."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edge.state.alerts import AlertBatch, AlertSignal, apply_signals
from edge.state.rules import StoreRules


@dataclass(frozen=True, slots=True)
class SilenceCheck:
    """A writer job: raise `sensor_silent` for quiet devices, resolve it for ones heard from again.
    Devices never heard from count from ``since_ms`` (the daemon's start)."""

    rules: StoreRules
    now_ms: int
    since_ms: int

    def __call__(self, conn: sqlite3.Connection) -> AlertBatch:
        signals = []
        for device, kind, last_seen in conn.execute("SELECT id, kind, last_seen_ms FROM devices").fetchall():
            period = self.rules.period_s(kind)
            if period is None:
                continue  # tills report per basket, not periodically
            quiet_s = (self.now_ms - max(last_seen or 0, self.since_ms)) / 1000
            limit_s = self.rules.silent_after_periods * period
            if quiet_s > limit_s:
                message = f"{device} silent for {quiet_s:.0f} s (expected every {period:g} s)"
                signals.append(
                    AlertSignal("sensor_silent", device, True, "warning", message, {"device": device})
                )
            else:
                signals.append(AlertSignal("sensor_silent", device, False))
        return AlertBatch(apply_signals(conn, signals, self.now_ms))
