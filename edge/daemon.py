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

from aiohttp import web

from edge.api import ApiContext, build_app
from edge.apply import BatchApplier, load_planogram_job
from edge.config import Config
from edge.housekeeping import run_housekeeping
from edge.ingest import MqttIngest, SerialIngest
from edge.metrics import IngestMetrics
from edge.privacy import Pseudonymiser, load_pseudonym_key
from edge.queries import StoreReader
from edge.supervisor import supervise
from edge.sync_service import SyncService
from edge.writer import StoreWriter
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
                shelf_max_grams=t.shelf_max_grams,
                shelf_negative_tolerance_grams=t.shelf_negative_tolerance_grams,
                fridge_min_c=t.fridge_min_c,
                fridge_max_c=t.fridge_max_c,
            ),
        )
        self.metrics = IngestMetrics(queue_depth=lambda: float(self.writer.depth()))
        self.writer = StoreWriter(
            db_path,
            BatchApplier(self.planogram, Pseudonymiser(key), config.retention.quarantine_max_rows),
            self.metrics,
            batch_max=config.database.batch_max,
            batch_wait_s=config.database.batch_wait_ms / 1000,
            queue_max=config.database.queue_max,
        )
        self.reader = StoreReader(db_path, config.store.id, t.low_stock_items)
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
        self.sync = SyncService(config, db_path, self.writer, self.metrics)
        self.http: HttpEndpoint | None = None

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        t0 = time.monotonic()
        await self.writer.open()
        async with asyncio.TaskGroup() as tasks:
            writer_task = tasks.create_task(supervise("writer", self.writer.run, self.metrics), name="writer")
            devices = await self.writer.run_job(load_planogram_job(self.planogram))
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
            for task in sources:
                task.cancel()
            await asyncio.gather(*sources, return_exceptions=True)
            await self.writer.stop()
            await writer_task
            await runner.cleanup()
        await self.sync.close()
        await self.reader.close()
        await self.writer.close()
        log.info("daemon_stopped", extra={"shutdown_ms": round((time.monotonic() - t_stop) * 1000)})

    async def _start_http(self) -> web.AppRunner:
        h = self.config.http
        app = build_app(
            ApiContext(self.reader, self.metrics, h.staff_token, lambda: self.mqtt.source is not None),
            self.sync.routes(),
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, h.host, h.port)
        await site.start()
        bound = runner.addresses[0] if runner.addresses else (h.host, h.port)
        self.http = HttpEndpoint(h.host, int(bound[1]))
        return runner
