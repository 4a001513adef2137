"""The daemon's configuration: one TOML file, every key defaulted, validated at start.

Errors name the file and the key: ``storeedge.toml: [mqtt] port: Expected `int` <= 65535, got 70000``.
Relative paths in the file are relative to the file's own directory.
"""

from __future__ import annotations

import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from edge.errors import ConfigError, field_error
from models.holiday_calendar import DEFAULT_COUNTRY, UnknownCountryError, check_country

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
TOKEN_MIN_LENGTH = 16  # [http] staff_token, kiosk_token
# The chain's cards (``LOY-000082``) and common card numbers: 12 to 19 digits, optionally grouped by
# single spaces or dashes (``4111 1111 1111 1111``), not part of a longer number or a decimal fraction.
DEFAULT_CARD_PATTERN = r"LOY-\d+|(?<![\d.])\d(?:[ -]?\d){11,18}(?!\d)"
StoreId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")]


class StoreSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: StoreId = "demo"
    name: str = "Demo Store"
    planogram: str = "simulators/demo_store/planogram.toml"
    layout: str = "simulators/demo_store/layout.toml"  # the walking graph for routes (docs/routing.md)
    # Offers for the kiosk until central pushes a `promotions` bundle (docs/customers.md); "" = none.
    promotions: str = "simulators/demo_store/promotions.json"
    # Products for the kiosk until central pushes a `catalog` bundle (docs/catalog.md); "" = none.
    catalog: str = "simulators/demo_store/catalog.json"
    timezone: str = "UTC"  # IANA name (e.g. "Europe/Berlin"): store-local days, nightly jobs, offers
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "EUR"  # ISO 4217: prices at the kiosk
    # ISO 3166 code: public holidays for the shelf forecasts (models.holiday_calendar); "" = none.
    country: str = DEFAULT_COUNTRY


class MqttSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = None  # default: storeedge-<store id>; must be stable for the persistent session
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 30
    reconnect_min_s: PositiveFloat = 0.5
    reconnect_max_s: PositiveFloat = 30.0
    max_payload_bytes: Annotated[int, msgspec.Meta(ge=256, le=16 * 1024 * 1024)] = 65536


class SerialPortSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    path: Annotated[str, msgspec.Meta(min_length=1)]
    name: str = ""
    baudrate: Annotated[int, msgspec.Meta(ge=50, le=4_000_000)] = 9600


class SerialSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    ports: list[SerialPortSection] = []
    reopen_min_s: PositiveFloat = 0.5
    reopen_max_s: PositiveFloat = 10.0


class DatabaseSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    path: str = "var/storeedge.db"
    batch_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500
    batch_wait_ms: Annotated[float, msgspec.Meta(ge=0, le=10_000)] = 10.0
    queue_max: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 20_000


class HttpSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080  # 0: pick a free port and log it
    # Bearer tokens: at least TOKEN_MIN_LENGTH printable ASCII characters, never the example's
    # "change-me-..." (checked in `_cross_checks`).
    staff_token: str | None = None  # required for /api/v1/*; None disables those endpoints
    kiosk_token: str | None = (
        None  # kiosks open shopper sessions with it (docs/customers.md); None: no kiosks
    )


class PrivacySection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # The chain's key for pseudonymising loyalty ids (HMAC-SHA256). Either inline or in a file.
    pseudonym_key: str | None = None
    pseudonym_key_file: str | None = None
    # This store's own key for shopper-session tokens; "" = session.key next to the database (created).
    session_key_file: str = ""
    # Households with no purchase here that may record consent per store-local day (their consent
    # events are never compacted, so this bounds what cards never seen at a till can create).
    unknown_households_per_day: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 500
    # What a card number looks like (a regex): redacted from quarantined payloads (edge/store/quarantine.py).
    card_number_pattern: str = DEFAULT_CARD_PATTERN


class RetentionSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    readings_days: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    quarantine_max_rows: PositiveInt = 10_000
    housekeeping_interval_s: PositiveFloat = 300.0
    access_log_days: PositiveFloat = 400.0  # who read which household's data, kept this long


class ThresholdsSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    low_stock_items: Annotated[int, msgspec.Meta(ge=0)] = 3
    stock_hysteresis_items: Annotated[int, msgspec.Meta(ge=1)] = 2
    stockout_warning_min: PositiveFloat = 30.0
    fridge_excursion_s: PositiveFloat = 300.0
    fridge_recovery_s: PositiveFloat = 60.0
    silent_after_periods: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    shelf_period_s: PositiveFloat = 1.0
    fridge_period_s: PositiveFloat = 5.0
    footfall_period_s: PositiveFloat = 10.0
    settle_s: PositiveFloat = 1.0
    settle_tolerance_g: PositiveFloat = 20.0
    queue_pressure_ratio: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.8
    queue_clear_ratio: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.6
    max_clock_skew_s: PositiveFloat = 300.0
    # Older readings are rejected (bad_timestamp): long enough for devices and tills to flush what they
    # buffered through a broker or network outage, short enough to catch unset clocks (1970, 2000).
    max_reading_age_s: PositiveFloat = 604_800.0
    shelf_max_grams: PositiveFloat = 200_000.0
    shelf_negative_tolerance_grams: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    fridge_min_c: float = -40.0
    fridge_max_c: float = 40.0


class SyncSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Bearer token central presents to /sync/v1/* (and the store presents to central for bundles);
    # None disables the feed.
    token: Annotated[str, msgspec.Meta(min_length=16)] | None = None
    page_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000
    page_max_bytes: Annotated[int, msgspec.Meta(ge=65_536, le=256 * 1024 * 1024)] = 4 * 1024 * 1024
    gzip_level: Annotated[int, msgspec.Meta(ge=1, le=9)] = 1  # pages are gzipped when the client accepts it
    # Bounds of what central has not acked: past either, raw sensor readings are compacted into
    # per-device per-minute aggregates (purchases, consent and erasure events are never touched).
    outbox_max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = 1024 * 1024 * 1024
    outbox_max_age_s: PositiveFloat = 172_800.0
    compact_interval_s: PositiveFloat = 60.0
    central_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$")] | None = None  # None: no downlink
    bundle_poll_s: PositiveFloat = 60.0
    # How often the store asks central for erasures made at other stores (edge/uplink/erasures.py).
    erasure_poll_s: PositiveFloat = 5.0
    # The chain's Ed25519 public key (hex) that signs bundles.
    public_key: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    bundle_dir: str = "var/bundles"
    bundle_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.central_url is not None and self.public_key is None:
            raise ValueError("public_key: required when central_url is set (bundles must be verified)")
        if self.central_url is not None and self.token is None:
            raise ValueError("token: required when central_url is set (the store presents it to central)")


class KioskSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # A kiosk warns after idle_s without input, then wipes after countdown_s more (WCAG 2.2.1: >= 20 s).
    idle_s: Annotated[float, msgspec.Meta(ge=10, le=3600)] = 60.0
    countdown_s: Annotated[float, msgspec.Meta(ge=20, le=600)] = 30.0
    session_s: Annotated[float, msgspec.Meta(ge=60, le=86_400)] = 900.0  # a shopper session token's lifetime
    # Opening sessions, per client address (token bucket): card after card cannot be tried quickly.
    sessions_per_minute: Annotated[float, msgspec.Meta(gt=0, le=60_000)] = 6.0
    session_burst: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10


class ModelsSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # The prediction models (docs/models.md, "Serving"). dir: the directory with next_purchase/,
    # next_basket/ and shelf_depletion/ (model.onnx + card.json each); "" = the models shipped in the package.
    enabled: bool = True
    dir: str = ""
    threads: Annotated[int, msgspec.Meta(ge=1, le=8)] = 1  # onnxruntime intra-op threads per model
    # Store-local ([store] timezone) time of the nightly full rescore.
    rescore_at: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "03:00"
    rescore_interval_s: PositiveFloat = 30.0  # how often households whose history changed are rescored
    shelf_forecast_interval_s: PositiveFloat = 60.0
    history_days: Annotated[int, msgspec.Meta(ge=28, le=3660)] = 365  # purchase history the models see
    list_limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10  # items on a shopping list
    batch_households: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000  # per scoring + write step
    # Steps of the nightly rescore and the customer scores scored at once (threads; 2 = both cores of
    # the store box; 1 = one core left for everything else during the night).
    batch_workers: Annotated[int, msgspec.Meta(ge=1, le=8)] = 2
    # The next-basket ranker's neighbours and store trend (edge.predictions.ranker) are recomputed before
    # a full rescore when this many days old (1: before every nightly run; more: fewer CPU-seconds at night).
    ranker_refresh_days: Annotated[int, msgspec.Meta(ge=1, le=28)] = 1
    # How often a running experiment (the live `experiment` bundle) is analysed and its rollout decided.
    experiment_check_s: PositiveFloat = 3600.0
    # Customer lifetime value horizon (docs/customers.md, "Insights"): discounted spend over these days.
    clv_horizon_days: Annotated[int, msgspec.Meta(ge=30, le=3650)] = 365


class LogSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["logfmt", "json"] = "logfmt"


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    store: StoreSection = StoreSection()
    mqtt: MqttSection = MqttSection()
    serial: SerialSection = SerialSection()
    database: DatabaseSection = DatabaseSection()
    http: HttpSection = HttpSection()
    privacy: PrivacySection = PrivacySection()
    retention: RetentionSection = RetentionSection()
    thresholds: ThresholdsSection = ThresholdsSection()
    sync: SyncSection = SyncSection()
    models: ModelsSection = ModelsSection()
    kiosk: KioskSection = KioskSection()
    log: LogSection = LogSection()
    # Where relative paths resolve from: the config file's directory. Not a TOML key.
    base_dir: str = "."

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The store's time zone (validated at load)."""
        return zoneinfo.ZoneInfo(self.store.timezone)

    @property
    def mqtt_client_id(self) -> str:
        return self.mqtt.client_id or f"storeedge-{self.store.id}"


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if "base_dir" in raw:
        raise ConfigError(f"{path}: base_dir: not a configuration key")
    raw["base_dir"] = str(path.resolve().parent)
    return parse_config(raw, origin=str(path))


def parse_config(raw: dict[str, object], origin: str = "config") -> Config:
    try:
        config = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{origin}: {_locate(str(exc))}") from exc
    problems = _cross_checks(config)
    if problems:
        raise ConfigError("\n".join(f"{origin}: {p}" for p in problems))
    return config


def _cross_checks(config: Config) -> list[str]:
    problems = []
    if config.mqtt.reconnect_min_s > config.mqtt.reconnect_max_s:
        problems.append("[mqtt] reconnect_min_s: must not exceed reconnect_max_s")
    if config.serial.reopen_min_s > config.serial.reopen_max_s:
        problems.append("[serial] reopen_min_s: must not exceed reopen_max_s")
    if config.thresholds.queue_clear_ratio >= config.thresholds.queue_pressure_ratio:
        problems.append("[thresholds] queue_clear_ratio: must be below queue_pressure_ratio")
    if config.thresholds.fridge_min_c >= config.thresholds.fridge_max_c:
        problems.append("[thresholds] fridge_min_c: must be below fridge_max_c")
    if config.privacy.pseudonym_key is not None and config.privacy.pseudonym_key_file is not None:
        problems.append("[privacy] pseudonym_key: set either pseudonym_key or pseudonym_key_file, not both")
    if config.privacy.pseudonym_key is not None and len(config.privacy.pseudonym_key) < 16:
        problems.append("[privacy] pseudonym_key: must be at least 16 characters")
    if (problem := _pattern_problem(config.privacy.card_number_pattern)) is not None:
        problems.append(f"[privacy] card_number_pattern: {problem}")
    for name, token in (("staff_token", config.http.staff_token), ("kiosk_token", config.http.kiosk_token)):
        problem = _token_problem(token)
        if problem is not None:
            problems.append(f"[http] {name}: {problem}")
    if (
        config.http.kiosk_token is not None
        and config.http.staff_token is not None
        and config.http.kiosk_token == config.http.staff_token
    ):
        problems.append(
            "[http] kiosk_token: must differ from staff_token (a kiosk must not get staff rights)"
        )
    try:
        zoneinfo.ZoneInfo(config.store.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"[store] timezone: unknown time zone {config.store.timezone!r} (an IANA name like Europe/Berlin)"
        )
    try:
        check_country(config.store.country)
    except UnknownCountryError as exc:
        problems.append(f"[store] country: {exc}")
    names = [p.name or p.path for p in config.serial.ports]
    for index, name in enumerate(names):
        if names.index(name) != index:
            problems.append(f"[serial] ports[{index}]: duplicate port {name!r}")
    return problems


def _pattern_problem(pattern: str) -> str | None:
    try:
        if re.fullmatch(pattern, ""):
            return "matches the empty string"
    except re.error as exc:
        return f"not a regular expression: {exc}"
    return None


def _token_problem(token: str | None) -> str | None:
    """Why a bearer token must not be used (None: it may). `storeedge demo` generates its own."""
    if token is None:
        return None
    if token.lower().startswith("change-me"):
        return "still the example's placeholder: set a secret of your own (e.g. `openssl rand -hex 16`)"
    if len(token) < TOKEN_MIN_LENGTH:
        return f"must be at least {TOKEN_MIN_LENGTH} characters (it is {len(token)})"
    if not re.fullmatch(r"[\x21-\x7e]+", token):
        return "printable ASCII without spaces only (it travels in an HTTP header)"
    if re.match(r"s[0-9]+\.", token):
        return "must not start like a session token (s<digits>.)"
    return None


def _locate(message: str) -> str:
    """msgspec says "... - at `$.mqtt.port`"; we say "[mqtt] port: ..." like the TOML file does."""
    path, text = field_error(message)
    if not path:
        return text
    if "." in path:
        section, _, key = path.partition(".")
        return f"[{section}] {key}: {text}"
    return f"{path}: {text}"
