"""Alerts through the real applier on real SQLite: hysteresis, dedup, food-safety timing, silence."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.customers.privacy import Pseudonymiser
from edge.state.alerts import acknowledge, resolve
from edge.state.rules import StoreRules, stock_signals
from edge.state.silence import SilenceCheck
from edge.store.apply import BatchApplier, Received, load_planogram_job
from edge.store.db import open_store
from sensors.planogram import load_planogram
from sensors.schemas import DeviceStatus, FridgeTemperature, ShelfWeight

PLANOGRAM = load_planogram(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"
)
T0 = 1_795_514_400_000
SHELF = "A3-1"  # pasta, 510 g
UNIT = PLANOGRAM.shelves[SHELF].unit_grams


class Store:
    def __init__(self, path: Path, rules: StoreRules) -> None:
        self.conn = open_store(path)
        self.applier = BatchApplier(PLANOGRAM, Pseudonymiser(b"k" * 32), rules=rules)
        self.applier.apply(self.conn, [Received(load_planogram_job(PLANOGRAM), T0)], T0)
        self.t = T0
        self.seq = 0
        self.published: list = []

    def apply(self, *items: object) -> None:
        outcome = self.applier.apply(self.conn, [Received(i, self.t) for i in items], self.t)  # type: ignore[arg-type]
        self.published.extend(outcome.alerts)

    def shelf_items(self, items: int, seconds: int = 3) -> None:
        for _ in range(seconds):
            self.seq += 1
            self.t += 1000
            self.apply(ShelfWeight(f"shelf-{SHELF}", SHELF, self.seq, self.t, items * UNIT + 2.0))

    def fridge(self, celsius: float, seconds: int, step: int = 5) -> None:
        for _ in range(0, seconds, step):
            self.seq += 1
            self.t += step * 1000
            self.apply(FridgeTemperature("fridge-F1", "F1", self.seq, self.t, celsius))

    def alerts(self, kind: str) -> list[tuple[str, str]]:
        return self.conn.execute(
            "SELECT state, severity FROM alerts WHERE kind = ? ORDER BY id", (kind,)
        ).fetchall()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(
        tmp_path / "s.db",
        StoreRules(low_stock_items=3, stock_hysteresis_items=2, fridge_excursion_s=300, fridge_recovery_s=60),
    )


def test_low_stock_opens_once_and_resolves_only_past_the_hysteresis(store: Store) -> None:
    store.shelf_items(6)
    assert store.alerts("low_stock") == []
    store.shelf_items(3)
    assert store.alerts("low_stock") == [("open", "warning")]
    store.shelf_items(2)
    store.shelf_items(3)
    store.shelf_items(4)  # above the threshold but inside the hysteresis band: stays open
    assert store.alerts("low_stock") == [("open", "warning")]
    store.shelf_items(5)
    assert store.alerts("low_stock") == [("resolved", "warning")]
    assert [a.state for a in store.published if a.kind == "low_stock"] == ["open", "resolved"]


def test_empty_shelf_is_critical_and_a_restock_clears_everything(store: Store) -> None:
    store.shelf_items(4)
    for items in (3, 2, 1, 0):
        store.shelf_items(items)
    assert store.alerts("empty_shelf") == [("open", "critical")]
    assert store.alerts("low_stock") == [("resolved", "warning")]  # the empty alert speaks instead
    store.shelf_items(20)
    assert store.alerts("empty_shelf") == [("resolved", "critical")]
    restocks = store.conn.execute("SELECT kind, items FROM shelf_changes WHERE kind = 'restock'").fetchall()
    assert restocks == [("restock", 20)]
    assert store.conn.execute("SELECT count(*) FROM alerts WHERE state != 'resolved'").fetchone() == (0,)


def test_predicted_stockout_from_the_pick_rate(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", StoreRules(low_stock_items=3, stockout_warning_min=60))
    store.shelf_items(12)
    for items in range(11, 4, -1):  # a pick every few seconds: a very busy shelf
        store.shelf_items(items)
    # 7 picked in the last hour, 5 left: empty in about 43 minutes, inside the 60-minute warning
    state, message = store.conn.execute(
        "SELECT state, message FROM alerts WHERE kind = 'stockout_soon'"
    ).fetchone()
    assert state == "open"
    assert "about 43 min" in message
    rate, stockout_ms = store.conn.execute(
        "SELECT pick_rate_per_h, stockout_ms FROM shelf_state WHERE shelf = ?", (SHELF,)
    ).fetchone()
    assert rate == 7
    assert stockout_ms > store.t


def test_door_open_spike_does_not_alarm_but_a_long_excursion_does(store: Store) -> None:
    store.fridge(3.0, 60)
    store.fridge(9.0, 90)  # door open 1.5 min
    store.fridge(3.0, 120)
    assert store.alerts("fridge_excursion") == []
    store.fridge(9.5, 400)  # compressor trouble: above 5 °C for over 5 min
    assert store.alerts("fridge_excursion") == [("open", "critical")]
    store.fridge(3.0, 30)  # back in range, but not for long enough yet
    assert store.alerts("fridge_excursion") == [("open", "critical")]
    store.fridge(3.0, 60)
    assert store.alerts("fridge_excursion") == [("resolved", "critical")]


def test_device_offline_and_back(store: Store) -> None:
    store.apply(DeviceStatus("fridge-F2", False, T0 + 10))
    store.apply(DeviceStatus("fridge-F2", False, T0 + 20))
    assert store.alerts("device_offline") == [("open", "warning")]
    store.apply(DeviceStatus("fridge-F2", True, T0 + 30))
    assert store.alerts("device_offline") == [("resolved", "warning")]


def test_misplaced_item_is_flagged_and_cleared(store: Store) -> None:
    store.shelf_items(6)
    store.seq += 1
    for _ in range(3):
        store.seq += 1
        store.t += 1000
        store.apply(ShelfWeight(f"shelf-{SHELF}", SHELF, store.seq, store.t, 6 * UNIT + 2.0 + 230))
    assert store.alerts("misplaced_item") == [("open", "info")]
    store.shelf_items(6)
    assert store.alerts("misplaced_item") == [("resolved", "info")]


def test_ack_then_resolve_by_staff(store: Store) -> None:
    store.apply(DeviceStatus("pos-1", False, T0))
    (alert_id,) = store.conn.execute("SELECT id FROM alerts").fetchone()
    store.conn.execute("BEGIN")
    acked = acknowledge(store.conn, alert_id, "ana", T0 + 5)
    assert acked is not None
    assert (acked.state, acked.acked_by) == ("acked", "ana")
    assert acknowledge(store.conn, alert_id, "bo", T0 + 6) is None  # already acked
    resolved = resolve(store.conn, alert_id, "ana", T0 + 7)
    assert resolved is not None
    assert resolved.state == "resolved"
    assert resolve(store.conn, alert_id, "ana", T0 + 8) is None
    store.conn.execute("COMMIT")


def test_silent_sensors_are_flagged_after_n_periods(store: Store) -> None:
    rules = StoreRules(silent_after_periods=2, shelf_period_s=1, fridge_period_s=5, footfall_period_s=10)
    store.shelf_items(6)  # shelf-A3-1 last seen at store.t (received time)
    last = store.conn.execute(
        "SELECT last_seen_ms FROM devices WHERE id = ?", (f"shelf-{SHELF}",)
    ).fetchone()[0]

    def silent_devices(now_ms: int) -> set[str]:
        store.conn.execute("BEGIN")
        SilenceCheck(rules, now_ms, since_ms=last)(store.conn)
        store.conn.execute("COMMIT")
        return {
            d
            for (d,) in store.conn.execute(
                "SELECT subject FROM alerts WHERE kind = 'sensor_silent' AND state = 'open'"
            )
        }

    assert f"shelf-{SHELF}" not in silent_devices(last + 1500)
    quiet = silent_devices(last + 2500)
    assert f"shelf-{SHELF}" in quiet
    assert "fridge-F1" not in quiet  # 2 x 5 s not yet over
    assert "pos-1" not in quiet  # tills have no period
    assert "fridge-F1" in silent_devices(last + 10_500)
    store.shelf_items(6)
    assert f"shelf-{SHELF}" not in silent_devices(store.t + 500)
    rows = store.conn.execute(
        "SELECT count(*) FROM alerts WHERE kind = 'sensor_silent' AND subject = ?", (f"shelf-{SHELF}",)
    ).fetchone()
    assert rows == (1,)  # one alert, opened once and resolved, not one per check


def test_alerts_go_to_the_outbox(store: Store) -> None:
    store.apply(DeviceStatus("pos-2", False, T0))
    kinds = [k for (k,) in store.conn.execute("SELECT entity FROM outbox WHERE kind = 'alert'")]
    assert kinds == ["device_offline:pos-2"]


def test_unique_active_alert_per_subject_is_enforced_by_the_schema(store: Store) -> None:
    store.apply(DeviceStatus("pos-3", False, T0))
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute(
            "INSERT INTO alerts (kind, subject, severity, state, message, opened_ms, updated_ms)"
            " VALUES ('device_offline', 'pos-3', 'warning', 'open', 'dup', 0, 0)"
        )


def test_footfall_heatmap_dwell_and_queue_pressure(store: Store) -> None:
    from sensors.schemas import FootfallCount

    hour = T0 - T0 % 3_600_000
    # checkout zone (capacity 30): 30 people in over a minute, then most leave
    store.apply(FootfallCount("footfall-checkout", "checkout", 1, hour + 60_000, 20, 0, 60.0))
    assert store.alerts("queue_pressure") == []
    store.apply(FootfallCount("footfall-checkout", "checkout", 2, hour + 120_000, 10, 0, 60.0))
    assert store.alerts("queue_pressure") == [("open", "warning")]  # 30/30 >= 0.8
    store.apply(FootfallCount("footfall-checkout", "checkout", 3, hour + 180_000, 0, 8, 60.0))
    assert store.alerts("queue_pressure") == [("open", "warning")]  # 22/30 is inside the hysteresis band
    store.apply(FootfallCount("footfall-checkout", "checkout", 4, hour + 240_000, 0, 20, 60.0))
    assert store.alerts("queue_pressure") == [("resolved", "warning")]
    row = store.conn.execute(
        "SELECT entered, exited, peak_occupancy, person_seconds, observed_s FROM footfall_hourly WHERE zone = 'checkout'"
    ).fetchone()
    assert row == (30, 28, 30, (20 + 30 + 22 + 2) * 60.0, 240.0)


def test_mixed_shelves_are_flagged_and_never_report_misplaced_items(tmp_path: Path) -> None:
    import msgspec

    from sensors.planogram import PlanogramError, parse_planogram

    raw = msgspec.to_builtins(
        {"shelves": list(PLANOGRAM.shelves.values()), "fridges": list(PLANOGRAM.fridges.values()),
         "zones": list(PLANOGRAM.zones.values()), "tills": list(PLANOGRAM.tills.values())}
    )  # fmt: skip
    shelf = next(s for s in raw["shelves"] if s["id"] == SHELF)
    shelf["mixed_with"], shelf["facings"] = ["1014"], 2
    mixed = parse_planogram(raw)
    assert mixed.shelves[SHELF].mixed
    store = Store(tmp_path / "m.db", StoreRules())
    store.applier = BatchApplier(mixed, Pseudonymiser(b"k" * 32))
    store.applier.apply(store.conn, [Received(load_planogram_job(mixed), T0)], T0)
    store.shelf_items(6)
    for _ in range(3):  # another product's weight on the shelf: expected here
        store.seq += 1
        store.t += 1000
        store.apply(ShelfWeight(f"shelf-{SHELF}", SHELF, store.seq, store.t, 6 * UNIT + 2.0 + 230))
    assert store.alerts("misplaced_item") == []
    assert store.conn.execute(
        "SELECT facings, mixed_with FROM shelves WHERE id = ?", (SHELF,)
    ).fetchone() == (2, "1014")
    shelf["mixed_with"] = ["no-such-sku"]
    with pytest.raises(
        PlanogramError, match=r"shelves\[\d+\]\.mixed_with\[0\]: 'no-such-sku' is not another shelf's sku"
    ):
        parse_planogram(raw, "planogram.toml")


def test_the_pick_rate_stockout_warning_gives_way_to_the_model() -> None:
    # With the shelf-depletion model serving, `stockout_predicted` is the one warning per shelf: the
    # linear rule stays quiet and clears any warning it raised before.
    linear, model = (
        StoreRules(stockout_warning_min=60),
        StoreRules(stockout_warning_min=60, pick_rate_stockout=False),
    )
    kinds = {(s.kind, s.active) for s in stock_signals(linear, "A1-1", "Milk", 5, 20.0, 0.0, False)}
    assert ("stockout_soon", True) in kinds
    kinds = {(s.kind, s.active) for s in stock_signals(model, "A1-1", "Milk", 5, 20.0, 0.0, False)}
    assert ("stockout_soon", False) in kinds
    assert ("stockout_soon", True) not in kinds
