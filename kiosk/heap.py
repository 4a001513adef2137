"""The kiosk's heap and Python's cyclic garbage collector.

A full (generation 2) collection walks every object the process holds. A running Textual kiosk holds
hundreds of thousands, so one took 250-300 ms, 22 times in a 30 s `bench/kiosk.py` run, and each landed
on some shopper's scan or tick: they were the whole p99 tail. So the kiosk collects everything at the
moments nobody waits (once started, with its store info and map loaded; and each time a session has
been wiped) and then freezes what survived (`gc.freeze`): until the next such moment, full collections
walk only what the current session allocated. Each settle unfreezes first, so nothing frozen that has
since become garbage outlives the next session (`tests/kiosk/test_kiosk_heap.py`).
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect everything now and exempt the survivors from collections until the next settle."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
