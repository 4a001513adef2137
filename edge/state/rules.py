"""When a shelf, fridge or device deserves an alert. Pure functions of state and thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from edge.state.alerts import AlertSignal


@dataclass(frozen=True, slots=True)
class StoreRules:
    low_stock_items: int = 3
    stock_hysteresis_items: int = 2
    stockout_warning_min: float = 30.0
    fridge_excursion_s: float = 300.0
    fridge_recovery_s: float = 60.0
    silent_after_periods: float = 2.0
    shelf_period_s: float = 1.0
    fridge_period_s: float = 5.0
    footfall_period_s: float = 10.0
    settle_s: float = 1.0
    settle_tolerance_g: float = 20.0
    queue_pressure_ratio: float = 0.8
    queue_clear_ratio: float = 0.6
    # `stockout_soon` from the last hour's pick rate. Off when the daemon serves the shelf-depletion
    # model, whose `stockout_predicted` alert replaces it (one warning per shelf, not two).
    pick_rate_stockout: bool = True

    def period_s(self, device_kind: str) -> float | None:
        return {
            "shelf": self.shelf_period_s,
            "fridge": self.fridge_period_s,
            "footfall": self.footfall_period_s,
        }.get(device_kind)


def stock_signals(
    rules: StoreRules,
    shelf: str,
    product: str,
    items: int,
    eta_min: float | None,
    misplaced_g: float,
    stuck: bool,
) -> list[AlertSignal]:
    low, hyst = rules.low_stock_items, rules.stock_hysteresis_items
    signals: list[AlertSignal] = []
    detail: dict[str, object] = {"shelf": shelf, "items": items, "product": product}
    if items == 0:
        signals.append(
            AlertSignal("empty_shelf", shelf, True, "critical", f"{shelf} is empty: {product}", detail)
        )
    elif items >= hyst:
        signals.append(AlertSignal("empty_shelf", shelf, False))
    if 0 < items <= low:
        signals.append(
            AlertSignal("low_stock", shelf, True, "warning", f"{shelf} low: {items} x {product}", detail)
        )
    elif items >= low + hyst or items == 0:  # at zero the empty alert speaks instead
        signals.append(AlertSignal("low_stock", shelf, False))
    warning = rules.stockout_warning_min
    if rules.pick_rate_stockout and items > 0 and eta_min is not None and eta_min <= warning:
        message = f"{shelf} ({product}) empty in about {eta_min:.0f} min at the current pick rate"
        signals.append(
            AlertSignal(
                "stockout_soon", shelf, True, "warning", message, {**detail, "eta_min": round(eta_min, 1)}
            )
        )
    elif not rules.pick_rate_stockout or items == 0 or eta_min is None or eta_min > 2 * warning:
        signals.append(AlertSignal("stockout_soon", shelf, False))
    if misplaced_g:
        message = f"{shelf}: {misplaced_g:+.0f} g that is not {product} (misplaced item?)"
        signals.append(
            AlertSignal(
                "misplaced_item", shelf, True, "info", message, {"shelf": shelf, "grams": round(misplaced_g)}
            )
        )
    else:
        signals.append(AlertSignal("misplaced_item", shelf, False))
    device = f"shelf-{shelf}"
    if stuck:
        signals.append(
            AlertSignal(
                "sensor_stuck", device, True, "warning", f"{device} reports the same value over and over"
            )
        )
    else:
        signals.append(AlertSignal("sensor_stuck", device, False))
    return signals


def fridge_signal(
    rules: StoreRules,
    fridge: str,
    celsius: float,
    min_c: float,
    max_c: float,
    out_since_ms: int | None,
    in_since_ms: int | None,
    ts_ms: int,
) -> AlertSignal | None:
    """Food safety: out of range for longer than the excursion time alarms; a door-open spike that
    recovers sooner does not. Clears after the recovery time back in range."""
    if out_since_ms is not None and (ts_ms - out_since_ms) / 1000 >= rules.fridge_excursion_s:
        minutes = (ts_ms - out_since_ms) / 60_000
        side = "above" if celsius > max_c else "below"
        return AlertSignal(
            "fridge_excursion", fridge, True, "critical",
            f"fridge {fridge} {side} {max_c if side == 'above' else min_c} °C for {minutes:.0f} min (now {celsius:.1f} °C)",
            {"fridge": fridge, "celsius": celsius, "out_since_ms": out_since_ms},
        )  # fmt: skip
    if in_since_ms is not None and (ts_ms - in_since_ms) / 1000 >= rules.fridge_recovery_s:
        return AlertSignal("fridge_excursion", fridge, False)
    return None


def queue_signal(rules: StoreRules, zone: str, occupancy: int, capacity: int) -> AlertSignal | None:
    """Checkout queues: alert at ``queue_pressure_ratio`` of the zone's capacity, clear below
    ``queue_clear_ratio`` (hysteresis: a queue hovering at the threshold does not flap)."""
    ratio = occupancy / capacity
    if ratio >= rules.queue_pressure_ratio:
        message = f"checkout zone {zone} at {occupancy}/{capacity} people: open another till"
        return AlertSignal(
            "queue_pressure",
            zone,
            True,
            "warning",
            message,
            {"zone": zone, "occupancy": occupancy, "capacity": capacity},
        )
    if ratio < rules.queue_clear_ratio:
        return AlertSignal("queue_pressure", zone, False)
    return None
