"""The store's planogram: shelves and the product on each, fridges, footfall zones and tills.

It is also the device registry: every device the daemon accepts messages from is implied by a row
here (`shelf-A1-1`, `fridge-F1`, `footfall-entrance`, `pos-1`). Loading validates the whole file and
reports every problem with its location.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from sensors.errors import SensorError
from sensors.schemas import device_id

Storage = Literal["ambient", "chilled", "frozen"]
Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,47}$")]


class PlanogramError(SensorError):
    """The planogram file is invalid; the message names the file and the field at fault."""


class Shelf(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Ident
    aisle: str
    zone: Ident
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    product: str
    category: Annotated[str, msgspec.Meta(min_length=1)]
    unit_grams: Annotated[float, msgspec.Meta(gt=0)]
    capacity: Annotated[int, msgspec.Meta(ge=1)]
    storage: Storage = "ambient"
    tare_grams: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    transport: Literal["mqtt", "serial"] = "mqtt"
    fridge: str | None = None
    facings: Annotated[int, msgspec.Meta(ge=1)] = 1
    # Other products sharing the shelf (SKUs of other shelves). A mixed shelf's weight cannot be split
    # into exact counts: its count is an estimate in units of `sku`, flagged as such.
    mixed_with: list[str] = []

    @property
    def mixed(self) -> bool:
        return bool(self.mixed_with)


class Fridge(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Ident
    storage: Literal["chilled", "frozen"]
    min_c: float
    max_c: float


class Zone(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Ident
    capacity: Annotated[int, msgspec.Meta(ge=1)]
    checkout: bool = False


class Till(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lane: Ident


class PlanogramFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    shelves: list[Shelf] = []
    fridges: list[Fridge] = []
    zones: list[Zone] = []
    tills: list[Till] = []


@dataclass(frozen=True, slots=True)
class Planogram:
    shelves: dict[str, Shelf]
    fridges: dict[str, Fridge]
    zones: dict[str, Zone]
    tills: dict[str, Till]

    devices: frozenset[str]
    categories_by_sku: dict[str, str]

    @classmethod
    def of(
        cls, shelves: list[Shelf], fridges: list[Fridge], zones: list[Zone], tills: list[Till]
    ) -> Planogram:
        return cls(
            shelves={s.id: s for s in shelves},
            fridges={f.id: f for f in fridges},
            zones={z.id: z for z in zones},
            tills={t.lane: t for t in tills},
            devices=frozenset(
                [device_id("shelf", s.id) for s in shelves]
                + [device_id("fridge", f.id) for f in fridges]
                + [device_id("footfall", z.id) for z in zones]
                + [device_id("pos", t.lane) for t in tills]
            ),
            categories_by_sku={s.sku: s.category for s in shelves},
        )


def load_planogram(path: Path) -> Planogram:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanogramError(f"{path}: cannot read planogram: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlanogramError(f"{path}: not valid TOML: {exc}") from exc
    return parse_planogram(raw, origin=str(path))


def parse_planogram(raw: object, origin: str = "planogram") -> Planogram:
    try:
        parsed = msgspec.convert(raw, PlanogramFile)
    except msgspec.ValidationError as exc:
        raise PlanogramError(f"{origin}: {_msgspec_location(str(exc))}") from exc
    problems: list[str] = []
    for table, rows, key in (
        ("shelves", parsed.shelves, "id"),
        ("fridges", parsed.fridges, "id"),
        ("zones", parsed.zones, "id"),
        ("tills", parsed.tills, "lane"),
    ):
        seen: set[str] = set()
        for index, row in enumerate(rows):
            value = getattr(row, key)
            if value in seen:
                problems.append(f"{table}[{index}].{key}: duplicate {key} {value!r}")
            seen.add(value)
    zones = {z.id for z in parsed.zones}
    fridges = {f.id for f in parsed.fridges}
    for index, shelf in enumerate(parsed.shelves):
        if shelf.zone not in zones:
            problems.append(f"shelves[{index}].zone: unknown zone {shelf.zone!r}")
        if shelf.fridge is not None and shelf.fridge not in fridges:
            problems.append(f"shelves[{index}].fridge: unknown fridge {shelf.fridge!r}")
    skus = {s.sku for s in parsed.shelves}
    for index, shelf in enumerate(parsed.shelves):
        for position, other in enumerate(shelf.mixed_with):
            if other not in skus or other == shelf.sku:
                problems.append(
                    f"shelves[{index}].mixed_with[{position}]: {other!r} is not another shelf's sku"
                )
        if shelf.facings > shelf.capacity:
            problems.append(
                f"shelves[{index}].facings: {shelf.facings} facings cannot hold {shelf.capacity} items"
            )
    for index, fridge in enumerate(parsed.fridges):
        if fridge.min_c >= fridge.max_c:
            problems.append(f"fridges[{index}].min_c: must be below max_c ({fridge.min_c} >= {fridge.max_c})")
    if problems:
        raise PlanogramError(f"{origin}: " + f"\n{origin}: ".join(problems))
    return Planogram.of(parsed.shelves, parsed.fridges, parsed.zones, parsed.tills)


def _msgspec_location(message: str) -> str:
    """Turn msgspec's "Expected `int`, got `str` - at `$.shelves[3].capacity`" into "shelves[3].capacity: ..."."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        return message
    return f"{where.rstrip('`').removeprefix('$.')}: {text}"
