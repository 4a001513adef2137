"""What each change adds to its store's totals at central (`sync.central_db` keeps them exactly once)."""

from __future__ import annotations

from typing import TypeAlias

import msgspec

Buffer: TypeAlias = bytes | msgspec.Raw  # what change bodies arrive as


# -- effects: what each change adds to a store's totals -----------------------------------------------


class _EffectBody(msgspec.Struct, frozen=True):
    type: str | None = None
    total: float | None = None
    action: str | None = None
    count: int | None = None
    entered: int | None = None
    exited: int | None = None
    n: int | None = None
    picks: int | None = None
    puts: int | None = None


_effect_decoder = msgspec.json.Decoder(_EffectBody)


def add_effects(totals: dict[str, int], kind: str, body: Buffer, sign: int = 1) -> None:
    """Add (``sign=1``) or take back (``-1``) what a change contributes to its store's totals. Integers
    only, so they add up to the same in any order. Hot path: one decode, no intermediate objects."""
    name = "changes:" + kind
    totals[name] = totals.get(name, 0) + sign
    if kind != "reading" and kind != "reading_aggregate" and kind != "purchase":  # noqa: PLR1714 - fastest
        return
    try:
        b = _effect_decoder.decode(body)
    except msgspec.DecodeError:
        return
    if kind == "purchase":
        totals["purchases"] = totals.get("purchases", 0) + sign
        totals["revenue_cents"] = totals.get("revenue_cents", 0) + sign * round((b.total or 0.0) * 100)
        return
    aggregate = kind == "reading_aggregate"
    totals["sensor_readings"] = totals.get("sensor_readings", 0) + sign * ((b.n or 0) if aggregate else 1)
    if b.type == "shelf_event":
        if aggregate:
            picks, puts = b.picks or 0, b.puts or 0
        elif b.action == "pick":
            picks, puts = b.count or 0, 0
        else:
            picks, puts = 0, b.count or 0
        totals["picks"] = totals.get("picks", 0) + sign * picks
        totals["puts"] = totals.get("puts", 0) + sign * puts
    elif b.type == "footfall":
        totals["people_in"] = totals.get("people_in", 0) + sign * (b.entered or 0)
        totals["people_out"] = totals.get("people_out", 0) + sign * (b.exited or 0)


def effects(kind: str, body: Buffer) -> dict[str, int]:
    """The totals one change contributes (see `add_effects`)."""
    out: dict[str, int] = {}
    add_effects(out, kind, body)
    return out
