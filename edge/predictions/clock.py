"""Store-local time for the prediction tasks: the store's calendar day and when the nightly rescore runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

MS_PER_DAY = 86_400_000


class StoreClock:
    """Store-local time: ``[store] timezone`` (an IANA name), or the box's local time for ""."""

    def __init__(self, timezone: str = "", now: Callable[[], float] = time.time) -> None:
        self._tz: tzinfo | None = ZoneInfo(timezone) if timezone else None
        self.now = now

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def _local(self, ms: int) -> datetime:
        moment = datetime.fromtimestamp(ms / 1000, self._tz)
        return moment if self._tz is not None else moment.astimezone()

    def utc_offset_min(self, ms: int) -> int:
        offset = self._local(ms).utcoffset()
        return 0 if offset is None else int(offset.total_seconds() // 60)

    def next_at(self, now_ms: int, at: str) -> int:
        """The first moment strictly after ``now_ms`` when the store-local wall clock shows ``at`` (HH:MM)."""
        hour, minute = (int(part) for part in at.split(":"))
        local = datetime.fromtimestamp(now_ms / 1000, self._tz)  # naive local time when tz is None
        candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        while int(candidate.timestamp() * 1000) <= now_ms:
            candidate = (candidate + timedelta(days=1)).replace(hour=hour, minute=minute)
        return int(candidate.timestamp() * 1000)


def nightly_wait_ms(clock: StoreClock, now_ms: int, last_full_ms: int | None, at: str) -> int:
    """How long until the next full rescore: none if the last one is more than a day old or never ran
    (the box was off at the nightly time), else until the wall clock next shows ``at``."""
    if last_full_ms is None or now_ms - last_full_ms > MS_PER_DAY:
        return 0
    return clock.next_at(now_ms, at) - now_ms
