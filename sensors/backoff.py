"""Exponential backoff with full jitter, shared by every reconnecting transport."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """``next_delay()`` grows ``minimum * 2**n`` up to ``maximum``, jittered; ``reset()`` after success."""

    minimum: float = 0.5
    maximum: float = 30.0
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.minimum * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        # Full jitter between half and all of the ceiling: spreads a store's reconnecting devices out
        # without ever retrying in a tight loop.
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
