"""How one kiosk is set up: which daemon, which scanner, which map; the CLI and the tests build these."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class KioskSettings:
    api: str = "http://127.0.0.1:8080"
    token: str | None = None  # the kiosk token ([http] kiosk_token)
    scanner: str | None = None  # serial port of a barcode scanner, e.g. /dev/ttyUSB0
    staff: bool = False  # start at the staff login (a staff handheld)
    layout: Path | None = None  # store layout for the map (default: the demo store's)
    start_node: str | None = None  # where this kiosk stands in the layout, e.g. kiosk-1
    idle_s: float | None = None  # override the daemon's [kiosk] idle_s
    countdown_s: float | None = None  # override the daemon's [kiosk] countdown_s (>= 20 is enforced)
    public: bool = True  # a public kiosk: no command palette
    language: str = "en"  # the shopper's texts: kiosk/locales/<language>.toml
    currency: str | None = None  # ISO code for prices; default: the daemon's kiosk info, else EUR
    clock: Callable[[], float] = field(default=time.monotonic)
    tick_s: float = 0.25  # how often the idle timer looks at the clock
