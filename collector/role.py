"""``kordon run --roles collector``: wires source, ingest, spool, committer and writer."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from prometheus_client import start_http_server

from collector import deadletter
from collector.acks import AckTracker
from collector.deadletter import DeadLetterPublisher
from collector.fieldtypes import FieldTypes
from collector.guard import CardinalityGuard
from collector.ingest import Ingest, IngestResult
from collector.source import MqttSource
from collector.spool import Spool
from collector.stats import CollectorStats
from collector.writer import InfluxWriter
from kordon import metrics
from kordon.clock import Clock
from kordon.config import ConfigError, Settings, split_host_port
from kordon.fleet import FleetError, load_fleet
from kordon.model.payload import DecodeLimits
from kordon.storage.stores import open_telemetry_store

log = logging.getLogger("collector")


class CollectorRole:
    name = "collector"

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        cfg = settings.collector
        self.client_id = settings.mqtt.client_id_for("collector")
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", self.client_id)
        self.stats = CollectorStats()
        metrics.register("collector", self.stats)
        self.spool = Spool(
            settings.data_dir / "spool" / safe_id,
            segment_bytes=cfg.spool_segment_bytes,
            fsync=cfg.spool_fsync,
        )
        self.guard = CardinalityGuard(
            cfg.max_new_devices_per_minute,
            cfg.max_devices,
            known=_fleet_devices(settings),
            state_file=settings.data_dir / "guard" / f"{safe_id}.devices",
        )
        self.types = FieldTypes(self.stats)
        self.ingest = Ingest(
            self.stats,
            DecodeLimits(
                max_payload_bytes=cfg.max_payload_bytes,
                max_batch=cfg.max_batch,
                max_metrics=cfg.max_metrics,
                max_string=cfg.max_string,
                max_future_seconds=cfg.max_future,
            ),
            deadletter_payload_bytes=cfg.deadletter_payload_bytes,
            source=self.client_id,
            guard=self.guard,
            types=self.types,
            track_seq=settings.mqtt.protocol != "5",
        )
        self.source = MqttSource(
            settings.mqtt,
            self.client_id,
            on_message=self._on_message,
            on_new_session=self._on_new_session,
            on_connected=self._on_connected,
        )
        self.acks = AckTracker(self.source.ack)
        self.deadletters = DeadLetterPublisher(self.source.client, self.acks.release)
        self.influx = open_telemetry_store(settings.influx)
        self.writer = InfluxWriter(
            self.spool,
            self.influx,
            self.stats,
            on_rejected=self._deadletter_rejected_line,
            batch_bytes=cfg.batch_bytes,
            flush_interval=cfg.flush_interval,
            retry_max=cfg.retry_max,
            create_database=settings.influx.create_database,
            concurrency=cfg.write_concurrency,
            types=self.types,
        )
        self._metrics_server: Any = None
        self._stop = threading.Event()
        self._committer = threading.Thread(
            target=self._commit_loop, name="spool-commit", daemon=True
        )
        self.stats.gauge(
            "kordon_collector_spool_backlog_bytes",
            "bytes in the spool not yet written to InfluxDB",
            self.spool.backlog_bytes,
        )
        self.stats.gauge(
            "kordon_collector_unacked_messages",
            "messages received but not yet acknowledged",
            self.acks.pending,
        )
        self.stats.gauge(
            "kordon_collector_known_devices",
            "devices admitted by the cardinality guard",
            lambda: float(self.guard.known),
        )
        self.stats.gauge(
            "kordon_collector_mqtt_connected",
            "1 while connected to the broker",
            lambda: float(self.source.connected.is_set()),
        )
        self.stats.gauge(
            "kordon_collector_influx_failing",
            "1 while InfluxDB writes fail",
            lambda: float(self.writer.failing),
        )

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        log.info("collector %s: spool in %s", self.client_id, self.spool.directory)
        if not self.ingest.track_seq:
            log.info(
                "MQTT 5 shared group: seq gaps are not counted here (each member sees only "
                "its share of a device's readings); count them in storage or in the alerts role"
            )
        if self.settings.collector.metrics_addr:
            host, port = split_host_port(self.settings.collector.metrics_addr)
            self._metrics_server, _ = start_http_server(port, host, registry=metrics.REGISTRY)
            log.info("collector metrics on http://%s:%d/metrics", host, port)
        self.writer.start()
        self._committer.start()
        self.source.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.source.stop()
        self._stop.set()
        self._committer.join(timeout)
        self.spool.commit()
        self.writer.drain(min(timeout, 5.0))
        self.writer.stop(timeout)
        self.spool.close()
        self.guard.close()
        self.influx.close()
        log.info("collector stopped: %s", self.stats.summary())

    def healthy(self) -> bool:
        return self._committer.is_alive() and self.source.connected.is_set()

    # --- MQTT network thread ----------------------------------------------------------------
    def _on_connected(self) -> None:
        self.stats.mqtt_connects += 1

    def _on_new_session(self) -> None:
        self.stats.resubscribes += 1
        self.acks.new_session()

    def _on_message(self, message: paho.MQTTMessage) -> None:
        if message.dup:
            self.stats.messages_redelivered += 1
        try:
            result = self.ingest.handle(message.topic, message.payload, self.clock.now())
        except Exception:  # the collector never crashes on input
            log.exception("unexpected error on a message from %s", message.topic)
            result = IngestResult(
                deadletter=self._letter(
                    message.topic,
                    message.payload,
                    deadletter.INTERNAL,
                    "internal error while decoding; see collector log",
                )
            )
        parts = bool(result.records) + (result.deadletter is not None)
        token = self.acks.hold(message.mid, message.qos, parts)
        if result.records:
            self.spool.append(result.records, token)
        if result.deadletter is not None:
            self.deadletters.publish(result.deadletter, token)

    def _letter(self, topic: str, payload: bytes, code: str, reason: str) -> bytes:
        self.stats.count_deadletter(code)
        return deadletter.encode(
            topic,
            payload,
            code,
            [reason],
            self.clock.now(),
            self.client_id,
            self.settings.collector.deadletter_payload_bytes,
        )

    # --- committer thread -----------------------------------------------------------------
    def _commit_loop(self) -> None:
        interval = self.settings.collector.ack_interval
        next_stats = time.monotonic() + self.settings.collector.stats_interval
        while not self._stop.is_set():
            started = time.monotonic()
            tokens = self.spool.commit()
            if tokens:
                self.acks.release([token for token in tokens if token is not None])  # type: ignore[misc]
            if started >= next_stats:
                log.info("stats: %s", self.stats.summary())
                next_stats = started + self.settings.collector.stats_interval
            elapsed = time.monotonic() - started
            if elapsed < interval:
                self._stop.wait(interval - elapsed)

    # --- writer thread --------------------------------------------------------------------
    def _deadletter_rejected_line(self, line: bytes, reason: str) -> bool:
        letter = self._letter(
            "influxdb", line, deadletter.INFLUX_REJECTED, f"InfluxDB rejected the line: {reason}"
        )
        return self.deadletters.publish_and_wait(letter)


def _fleet_devices(settings: Settings) -> list[tuple[str, str, str]]:
    if settings.fleet.file is None:
        return []
    try:
        fleet = load_fleet(settings.fleet.file)
    except (FleetError, OSError) as exc:
        raise ConfigError(f"fleet.file: {exc}") from None
    return [(entry.site, entry.kind.value, entry.device) for entry in fleet.devices()]


def build(settings: Settings, clock: Clock) -> CollectorRole:
    return CollectorRole(settings, clock)
