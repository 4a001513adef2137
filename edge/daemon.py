"""The daemon: wires config, store, transports and API together under one TaskGroup.

Start order: writer (and the planogram loaded through it), HTTP API, then the sources. Stop order on
SIGTERM/SIGINT is the reverse: sources stop taking input, the writer commits everything queued, the
API closes. Each long-lived task is supervised: a failure is logged and the task restarted with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from edge.catalog.routes import catalog_api, catalog_paths, catalog_source
from edge.config import Config
from edge.customers.insights_routes import insights_api
from edge.customers.interactions import InteractionRoutes
from edge.customers.privacy import CardCheck, Pseudonymiser, load_pseudonym_key, load_session_key
from edge.customers.routes import AuditedReads, CustomerApi, CustomerSettings
from edge.customers.session_routes import SessionApi
from edge.experiments.routes import ExperimentRoutes
from edge.experiments.service import ExperimentService
from edge.http import staff_routes
from edge.http.access import AccessPolicy, SessionRateLimit
from edge.http.app import ApiContext, build_app
from edge.http.sessions import SessionSigner, load_revocations
from edge.ingest.receipts import TillReceipts
from edge.ingest.service import MqttIngest, SerialIngest
from edge.metrics import IngestMetrics
from edge.predictions.model_set import load_store_models, model_directory
from edge.predictions.realtime import RealtimeRecommender
from edge.predictions.service import PredictionService
from edge.state.bus import AlertBus
from edge.state.rules import StoreRules
from edge.state.silence import SilenceCheck
from edge.store.apply import BatchApplier, load_planogram_job
from edge.store.db import ReadThread
from edge.store.history_refresh import HistoryCache
from edge.store.housekeeping import run_housekeeping
from edge.store.reader import StoreReader
from edge.store.writer import StoreWriter
from edge.supervisor import cancel_all, supervise
from edge.uplink.erasures import store_household_hooks
from edge.uplink.live_layout import LiveLayout, initial_layout
from edge.uplink.service import SyncService
from routing import Layout
from sensors.backoff import Backoff
from sensors.decode import Decoder, Limits
from sensors.mqtt import MqttSettings
from sensors.planogram import Planogram, load_planogram
from sensors.serial_port import SerialSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HttpEndpoint:
    host: str
    port: int


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.planogram: Planogram = load_planogram(config.path(config.store.planogram))
        self.live_layout = LiveLayout(config, initial_layout(config))
        db_path = config.path(config.database.path)
        key = load_pseudonym_key(
            config.privacy.pseudonym_key,
            config.path(config.privacy.pseudonym_key_file) if config.privacy.pseudonym_key_file else None,
            db_path.with_name("pseudonym.key"),
        )
        t = config.thresholds
        self.decoder = Decoder(
            config.store.id,
            self.planogram,
            Limits(
                max_payload_bytes=config.mqtt.max_payload_bytes,
                max_clock_skew_s=t.max_clock_skew_s,
                max_reading_age_s=t.max_reading_age_s,
                shelf_max_grams=t.shelf_max_grams,
                shelf_negative_tolerance_grams=t.shelf_negative_tolerance_grams,
                fridge_min_c=t.fridge_min_c,
                fridge_max_c=t.fridge_max_c,
            ),
        )
        self.rules = StoreRules(
            low_stock_items=t.low_stock_items,
            stock_hysteresis_items=t.stock_hysteresis_items,
            stockout_warning_min=t.stockout_warning_min,
            fridge_excursion_s=t.fridge_excursion_s,
            fridge_recovery_s=t.fridge_recovery_s,
            silent_after_periods=t.silent_after_periods,
            shelf_period_s=t.shelf_period_s,
            fridge_period_s=t.fridge_period_s,
            footfall_period_s=t.footfall_period_s,
            settle_s=t.settle_s,
            settle_tolerance_g=t.settle_tolerance_g,
            queue_pressure_ratio=t.queue_pressure_ratio,
            queue_clear_ratio=t.queue_clear_ratio,
            pick_rate_stockout=not config.models.enabled,
        )
        self.bus = AlertBus(config.store.id)
        # What capabilities do inside the store's transaction when it applies a purchase, a consent
        # change or an erasure (edge.store.hooks), in this order.
        self.hooks = store_household_hooks()
        self.metrics = IngestMetrics(queue_depth=lambda: float(self.writer.depth()))
        self.catalog_file = catalog_source(catalog_paths(config))  # products: kiosk and till lines
        self.writer = StoreWriter(
            db_path,
            BatchApplier(
                self.planogram,
                Pseudonymiser(key),
                config.retention.quarantine_max_rows,
                self.rules,
                card_pattern=config.privacy.card_number_pattern,
                hooks=self.hooks,
                sku_categories=lambda: self.catalog_file.current().categories,
            ),
            self.metrics,
            batch_max=config.database.batch_max,
            batch_wait_s=config.database.batch_wait_ms / 1000,
            queue_max=config.database.queue_max,
        )
        self.writer.on_alerts = self.bus.publish
        self.reader = StoreReader(db_path, config.store.id, t.low_stock_items, 2 * t.stockout_warning_min)
        m = config.mqtt
        self.mqtt = MqttIngest(
            MqttSettings(
                host=m.host,
                port=m.port,
                client_id=config.mqtt_client_id,
                username=m.username,
                password=m.password,
                keepalive_s=m.keepalive_s,
            ),
            config.store.id,
            self.decoder,
            self.writer,
            self.metrics,
            Backoff(m.reconnect_min_s, m.reconnect_max_s),
            receipts=TillReceipts(config.store.id),
        )
        self.serial = [
            SerialIngest(
                SerialSettings(path=str(config.path(p.path)), baudrate=p.baudrate, name=p.name),
                self.decoder,
                self.writer,
                self.metrics,
                Backoff(config.serial.reopen_min_s, config.serial.reopen_max_s),
            )
            for p in config.serial.ports
        ]
        # The purchase history packed per household: read by the nightly rescore and customer scores.
        self.history = HistoryCache(db_path, self.writer)
        self.predictions = (
            PredictionService(
                config,
                db_path,
                self.writer,
                self.metrics,
                load_store_models(config, models_dir := model_directory(config)),
                models_dir=models_dir,
                history=self.history,
            )
            if config.models.enabled
            else None
        )
        # A/B tests of model versions from central's `experiment` bundle (docs/experiments.md).
        self.experiments = (
            ExperimentService(config, db_path, self.writer, self.predictions) if self.predictions else None
        )
        p = config.privacy
        session_key = load_session_key(
            config.path(p.session_key_file) if p.session_key_file else None, db_path.with_name("session.key")
        )
        self.sessions = SessionSigner(session_key, config.kiosk.session_s)
        # Erasures from central run the daemon's own household hooks and end the household's sessions.
        self.sync = SyncService(
            config, db_path, self.writer, self.metrics, hooks=self.hooks, sessions=self.sessions
        )
        self.customers, self.kiosk_sessions = self._customer_api(config, db_path, key)
        self.interactions = InteractionRoutes(self.writer, db_path, config.tz)
        # CLV, churn and segments of households with analytics consent, after every full rescore.
        self.insights = insights_api(
            config,
            db_path,
            self.writer,
            lambda: (self.predictions.models_dir if self.predictions else None) or model_directory(config),
            self.customers.settings.promotion_paths,
            self.history,
        )
        if self.predictions is not None:
            self.predictions.after_full_rescore.append(self.insights.scoring.rescore_all)
        self.catalog = catalog_api(config, db_path, self.writer, self.customers.promotions, self.catalog_file)
        self.realtime_reads = ReadThread(db_path, "realtime-reader")
        self.realtime = RealtimeRecommender(self.realtime_reads, self.live_layout.layout)
        self.http: HttpEndpoint | None = None

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        t0 = time.monotonic()
        await self.writer.open()
        async with asyncio.TaskGroup() as tasks:
            writer_task = tasks.create_task(supervise("writer", self.writer.run, self.metrics), name="writer")
            devices = await self.writer.run_job(load_planogram_job(self.planogram))
            # Ended sessions and erased households stay ended across a restart.
            self.sessions.restore(await self.writer.run_job(load_revocations))
            runner = await self._start_http()
            sources = [tasks.create_task(supervise("mqtt", self.mqtt.run, self.metrics), name="mqtt")]
            sources += [
                tasks.create_task(
                    supervise(f"serial:{s.label}", s.run, self.metrics), name=f"serial:{s.label}"
                )
                for s in self.serial
            ]
            sources += [
                tasks.create_task(supervise(f"sync:{name}", run, self.metrics), name=f"sync:{name}")
                for name, run in self.sync.tasks()
            ]
            sources += [
                tasks.create_task(
                    supervise(f"predictions:{name}", run, self.metrics), name=f"predictions:{name}"
                )
                for name, run in (self.predictions.tasks() if self.predictions else [])
            ]
            sources += [
                tasks.create_task(
                    supervise(f"experiments:{name}", run, self.metrics), name=f"experiments:{name}"
                )
                for name, run in (self.experiments.tasks() if self.experiments else [])
            ]
            sources.append(
                tasks.create_task(
                    supervise("layout:watch", self.live_layout.run_watch, self.metrics), name="layout:watch"
                )
            )
            sources.append(
                tasks.create_task(
                    supervise("recommendations:associations", self.realtime.run, self.metrics),
                    name="recommendations:associations",
                )
            )
            sources.append(
                tasks.create_task(
                    supervise(
                        "alerts:mqtt",
                        lambda: self.bus.run_mqtt_publisher(lambda: self.mqtt.source),
                        self.metrics,
                    ),
                    name="alerts:mqtt",
                )
            )
            sources.append(
                tasks.create_task(
                    supervise("alerts:silence", self._watch_silence, self.metrics), name="alerts:silence"
                )
            )
            r = self.config.retention
            sources.append(
                tasks.create_task(
                    supervise(
                        "housekeeping",
                        lambda: run_housekeeping(
                            self.writer,
                            self.metrics,
                            r.housekeeping_interval_s,
                            r.readings_days,
                            r.quarantine_max_rows,
                            r.access_log_days,
                        ),
                        self.metrics,
                    ),
                    name="housekeeping",
                )
            )
            log.info(
                "daemon_started",
                extra={
                    "devices": devices,
                    "http": f"{self.http.host}:{self.http.port}" if self.http else None,
                    "startup_ms": round((time.monotonic() - t0) * 1000),
                },
            )
            if started is not None:
                started.set()
            await stop.wait()
            log.info("daemon_stopping")
            t_stop = time.monotonic()
            await cancel_all(sources, timeout_s=3.0)
            await self.writer.stop()
            await writer_task
            await runner.cleanup()
        await self.sync.close()
        if self.experiments is not None:
            await self.experiments.close()
        if self.predictions is not None:
            await self.predictions.close()
        await self.reader.close()
        await self.customers.close()
        await self.kiosk_sessions.close()
        await self.interactions.close()
        await self.insights.close()
        await self.catalog.close()
        await self.history.close()
        await self.realtime_reads.close()
        await self.writer.close()
        log.info("daemon_stopped", extra={"shutdown_ms": round((time.monotonic() - t_stop) * 1000)})

    async def _watch_silence(self) -> None:
        since_ms = int(time.time() * 1000)
        interval = (
            min(self.rules.shelf_period_s, self.rules.fridge_period_s, self.rules.footfall_period_s) / 2
        )
        while True:
            await asyncio.sleep(interval)
            await self.writer.run_job(SilenceCheck(self.rules, int(time.time() * 1000), since_ms))

    def _customer_api(self, config: Config, db_path: Path, key: bytes) -> tuple[CustomerApi, SessionApi]:
        k = config.kiosk
        settings = CustomerSettings(
            store_id=config.store.id,
            store_name=config.store.name,
            idle_s=k.idle_s,
            countdown_s=k.countdown_s,
            session_s=k.session_s,
            categories=tuple(sorted(set(self.planogram.categories_by_sku.values()))),
            timezone=config.tz,
            # Central's promotions bundle when one is live, else the file the config names.
            promotion_paths=(
                config.path(config.sync.bundle_dir) / "promotions" / "current" / "promotions.json",
                *([config.path(config.store.promotions)] if config.store.promotions else []),
            ),
            layout_text=self.live_layout.text,
            currency=config.store.currency,
            unknown_households_per_day=config.privacy.unknown_households_per_day,
        )
        customers = CustomerApi(settings, db_path, self.writer, self.sessions, self.predictions, self.hooks)
        kiosk = SessionApi(
            settings,
            AuditedReads(db_path, self.writer, "sqlite-sessions"),
            self.writer,
            Pseudonymiser(key),
            CardCheck(key),
            self.sessions,
            SessionRateLimit(k.sessions_per_minute, k.session_burst),
        )
        return customers, kiosk

    @property
    def layout(self) -> Layout:
        """The store layout being served now (`edge.uplink.live_layout`)."""
        return self.live_layout.layout()

    async def _start_http(self) -> web.AppRunner:
        h = self.config.http
        app = build_app(
            ApiContext(
                self.reader,
                self.metrics,
                h.staff_token,
                lambda: self.mqtt.source is not None,
                self.writer,
                self.bus,
                self.live_layout.layout,
                access=AccessPolicy(h.staff_token, h.kiosk_token, self.sessions),
            ),
            [
                *staff_routes.ROUTES,
                *self.sync.routes(),
                *self.kiosk_sessions.routes(),
                *self.customers.routes(),
                *self.interactions.routes(),
                *self.insights.routes(),
                *self.catalog.routes(),
                *self.realtime.routes(),
                *(
                    ExperimentRoutes(self.experiments, self.experiments.reads, self.writer).routes()
                    if self.experiments
                    else []
                ),
            ],
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, h.host, h.port)
        await site.start()
        bound = runner.addresses[0] if runner.addresses else (h.host, h.port)
        self.http = HttpEndpoint(h.host, int(bound[1]))
        return runner
