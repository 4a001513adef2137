"""The shopper's visit as the daemon sends it (``GET /api/v1/in-store/{id}/personalization``, built by
`edge.customers.visit`): the route by section in walking order, what to pick there and why, the
aisles to skip, cold-chain advice, reminders and the walk's node path. The route screen is built from
it, and a tick asks for it again with ``?items=`` (what is left) and ``?from=`` (where the shopper is).
"""

from __future__ import annotations

import msgspec

__all__ = ["PickView", "SectionView", "VisitView"]


class PickView(msgspec.Struct, frozen=True):
    category: str
    why: str
    days_left: float | None = None


class SectionView(msgspec.Struct, frozen=True):
    order: int
    section: str
    place: str
    side: str | None
    storage: str
    priority: str
    minutes_from_start: float
    items: list[PickView]
    node: str = ""


class VisitView(msgspec.Struct, frozen=True):
    household: str
    personalised: bool
    sections: list[SectionView]
    distance_m: float
    minutes: float
    skip: list[str] = []
    cold_chain: str | None = None
    reminders: list[str] = []
    directions: list[str] = []
    unreachable: list[str] = []
    start: str = ""
    end: str = ""
    path: list[str] = []
