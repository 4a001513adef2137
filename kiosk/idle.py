"""User idleness on a shared screen, measured from real input (keys, mouse, scans).

Textual's `events.Idle` means "the message queue is empty", not "nobody is here", so the app feeds
this tracker from its input events itself. The clock is injectable so tests can move time.

After `idle_s` without input the kiosk warns, counting down `countdown_s` (at least 20 s, WCAG 2.2.1:
"the user is warned before time expires and given at least 20 seconds to extend"); any input extends;
at the end of the countdown the kiosk wipes the session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

MIN_COUNTDOWN_S = 20.0

__all__ = ["MIN_COUNTDOWN_S", "IdlePhase", "IdleTracker"]


class IdlePhase(Enum):
    ACTIVE = "active"
    WARNING = "warning"
    EXPIRED = "expired"


class IdleTracker:
    def __init__(
        self, idle_s: float, countdown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if idle_s <= 0:
            raise ValueError(f"idle_s must be positive, got {idle_s}")
        self.idle_s = idle_s
        self.countdown_s = max(MIN_COUNTDOWN_S, countdown_s)
        self._clock = clock
        self._last_input = clock()

    def configure(self, idle_s: float, countdown_s: float) -> None:
        """New limits (from the daemon's `/api/v1/kiosk/info`); the countdown never drops below 20 s."""
        if idle_s <= 0:
            raise ValueError(f"idle_s must be positive, got {idle_s}")
        self.idle_s = idle_s
        self.countdown_s = max(MIN_COUNTDOWN_S, countdown_s)

    def touch(self) -> None:
        """Someone pressed a key, moved or clicked the mouse, touched the screen or scanned a card."""
        self._last_input = self._clock()

    def idle_for(self) -> float:
        return max(0.0, self._clock() - self._last_input)

    def phase(self) -> IdlePhase:
        idle = self.idle_for()
        if idle < self.idle_s:
            return IdlePhase.ACTIVE
        if idle < self.idle_s + self.countdown_s:
            return IdlePhase.WARNING
        return IdlePhase.EXPIRED

    def seconds_left(self) -> float:
        """Until the wipe."""
        return max(0.0, self.idle_s + self.countdown_s - self.idle_for())
