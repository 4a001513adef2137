"""Central's configuration (``central.toml``): msgspec structs, every key defaulted except the stores;
errors name the file and the key at fault (``central.toml: [central] dsn: ...``). docs/sync.md lists the keys."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from sync import central_schema
from sync.errors import CentralConfigError

Token = Annotated[str, msgspec.Meta(min_length=16)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


# -- configuration -----------------------------------------------------------------------------------


class CentralSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    dsn: str = "postgresql://127.0.0.1:5432/storeedge_central"  # libpq URI or key=value
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8090
    bundle_dir: str = "var/central-bundles"
    admin_token: Token | None = None  # required for /central/v1/status and the operations page when set
    page_limit: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000
    poll_interval_s: PositiveFloat = 1.0
    backoff_min_s: PositiveFloat = 0.2
    backoff_max_s: PositiveFloat = 2.0
    connect_timeout_s: PositiveFloat = 3.0
    request_timeout_s: PositiveFloat = 60.0
    lag_sample_s: PositiveFloat = 60.0  # how often each store's lag is recorded for the operations page
    # The chain's private key (storeedge central keygen): with it central decides the rollouts of the
    # experiments published with decided_by = "central" and publishes each step (docs/experiments.md).
    signing_key_file: str = ""
    experiment_check_s: PositiveFloat = 3600.0
    # Candidate model sets an experiment can bring (`storeedge central retrain` writes them here,
    # one folder per candidate; POST /api/v1/ab-tests names one).
    candidates_dir: str = "var/central-candidates"

    def __post_init__(self) -> None:
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError("backoff_min_s: must not exceed backoff_max_s")
        try:
            central_schema.connect_args(self.dsn)
        except ValueError as exc:
            raise ValueError(f"dsn: {exc}") from None


class StoreSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$")]
    token: Token


class LogSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["logfmt", "json"] = "logfmt"


class CentralConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    central: CentralSection = CentralSection()
    stores: list[StoreSection] = []
    log: LogSection = LogSection()
    base_dir: str = "."  # the config file's directory; not a TOML key
    origin: str = "central config"  # the config file's name, for errors; not a TOML key

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p


def load_central_config(path: Path) -> CentralConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CentralConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CentralConfigError(f"{path}: not valid TOML: {exc}") from exc
    for internal in ("base_dir", "origin"):
        if internal in raw:
            raise CentralConfigError(f"{path}: {internal}: not a configuration key")
    raw["base_dir"] = str(path.resolve().parent)
    raw["origin"] = str(path)
    return parse_central_config(raw, origin=str(path))


def parse_central_config(raw: dict[str, object], origin: str = "central config") -> CentralConfig:
    raw.setdefault("origin", origin)
    try:
        config = msgspec.convert(raw, CentralConfig)
    except msgspec.ValidationError as exc:
        raise CentralConfigError(f"{origin}: {_locate(str(exc))}") from exc
    ids = [s.id for s in config.stores]
    for index, store in enumerate(ids):
        if ids.index(store) != index:
            raise CentralConfigError(f"{origin}: stores[{index}].id: duplicate store {store!r}")
    return config


def _locate(message: str) -> str:
    """msgspec's "... - at `$.central.port`" -> "[central] port: ..."; "$.stores[1].url" -> "stores[1].url: ..."."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        text, where = message, "$"
    path = where.rstrip("`").removeprefix("$.").removeprefix("$")
    unknown = text.partition("unknown field `")[2].rstrip("`")
    if unknown:
        path, text = (f"{path}.{unknown}" if path else unknown), "unknown key (typo?)"
    section, dot, key = path.partition(".")
    if dot and "[" not in section:
        return f"[{section}] {key}: {text}"
    if path and "[" not in path and re.match(r"^[a-z_]+: ", text):  # a section's own check names its key
        return f"[{path}] {text}"
    return f"{path}: {text}" if path else text
