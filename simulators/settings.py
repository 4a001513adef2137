"""What a simulation run needs to know: where the broker and the planogram are, how fast to run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from simulators.errors import SimulatorSettingsError

# A store id becomes one MQTT topic level, so it must not contain separators or wildcards.
_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Settings of one `run_simulation`.

    ``speed`` is simulated seconds per real second and drives only the population (day curve, shopper
    arrivals, restocks); device sampling (``weight_hz``, fridge and footfall intervals) is in real time.
    ``duration_s`` is in real seconds; ``None`` runs until the stop event is set.
    ``catalog_path``: the store's ``catalog.json``; the tills charge its prices for the SKUs it lists (a
    price derived from the SKU otherwise, and for every SKU without a catalog).
    ``till_receipts``: tills wait for the daemon's receipt for each transaction and resend one not
    confirmed within ``receipt_timeout_s`` (`simulators.till`); off when no daemon is listening.
    """

    store_id: str
    planogram_path: Path
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str | None = None
    mqtt_password: str | None = field(default=None, repr=False)
    serial_link: Path | None = None
    seed: int = 1
    speed: float = 60.0
    weight_hz: float = 1.0
    fault_rate: float = 0.0
    duration_s: float | None = None
    ground_truth_path: Path | None = None
    start_time_ms: int | None = None
    till_receipts: bool = False
    receipt_timeout_s: float = 5.0
    catalog_path: Path | None = None

    def __post_init__(self) -> None:
        if not _TOPIC_LEVEL.match(self.store_id):
            raise SimulatorSettingsError(
                f"store_id {self.store_id!r} must be one MQTT topic level (letters, digits, _ . : -)"
            )
        if not 1 <= self.mqtt_port <= 65_535:
            raise SimulatorSettingsError(f"mqtt_port {self.mqtt_port} is not a TCP port")
        if not 0 < self.speed <= 100_000:
            raise SimulatorSettingsError(f"speed {self.speed} must be in (0, 100000]")
        # Above ~50 Hz per shelf the 35 MQTT shelves alone exceed what a paho publisher moves on a
        # store box (DESIGN.md measured ~2,000 QoS 1 msg/s); it is a typo, not a load test.
        if not 0 < self.weight_hz <= 50:
            raise SimulatorSettingsError(f"weight_hz {self.weight_hz} must be in (0, 50]")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise SimulatorSettingsError(f"fault_rate {self.fault_rate} must be in [0, 1]")
        if self.duration_s is not None and not self.duration_s > 0:
            raise SimulatorSettingsError(f"duration_s {self.duration_s} must be positive")
        if not self.receipt_timeout_s > 0:
            raise SimulatorSettingsError(f"receipt_timeout_s {self.receipt_timeout_s} must be positive")
        if self.start_time_ms is not None and self.start_time_ms < 0:
            raise SimulatorSettingsError(f"start_time_ms {self.start_time_ms} must be epoch milliseconds")
