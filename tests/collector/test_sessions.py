"""Sessions and subscriptions: MQTT 5 shared groups, lost sessions, the metrics endpoint."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from testkit import InfluxServer, MakeProcess, MosquittoServer, free_port, wait_until
from testkit.mqtt import StreamPublisher
from tests.collector.test_faults import assert_all_stored_once, stored


def test_two_mqtt5_collectors_share_the_stream(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    first = make_collector(mosquitto=own_mosquitto, client_id="c-a", protocol="5")
    second = make_collector(mosquitto=own_mosquitto, client_id="c-b", protocol="5")
    first.start(ready_line="collector ready")
    second.start(ready_line="collector ready")
    stream = StreamPublisher(
        own_mosquitto.host, own_mosquitto.port, site, devices=20, rate=1000
    ).start()
    wait_until(lambda: stream.sent >= 3000, 20, what="3,000 messages sent")
    stream.stop()
    assert_all_stored_once(influxdb, database, site, stream.acked)
    assert first.stop() == 0 and second.stop() == 0
    # Both members received a share: the shared subscription really split the stream.
    for process in (first, second):
        summary = [line for line in process.log_text().splitlines() if "collector stopped:" in line]
        received = int(summary[-1].split("received=")[1].split()[0])
        assert 500 < received < 2500, summary


def test_collector_resubscribes_when_the_broker_lost_the_session(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    collector = make_collector(mosquitto=own_mosquitto)
    collector.start(ready_line="collector ready")
    # SIGKILL: Mosquitto saves nothing, so it comes back without the collector's session.
    own_mosquitto.stop(signal.SIGKILL)
    own_mosquitto.start()
    wait_until(
        lambda: collector.log_text().count("without a session") >= 2,
        30,
        what="a fresh subscription after the broker restart",
    )
    _stream_200_stored_once(own_mosquitto, influxdb, database, site)
    assert collector.stop() == 0


def _stream_200_stored_once(
    broker: MosquittoServer, influxdb: InfluxServer, database: str, site: str
) -> None:
    """200 readings published after the restart: every acknowledged one stored, once."""
    stream = StreamPublisher(broker.host, broker.port, site, devices=5, rate=200).start()
    wait_until(lambda: stream.sent >= 200, 20, what="200 messages")
    stream.stop()
    assert_all_stored_once(influxdb, database, site, stream.acked)
    assert len(stored(influxdb, database, site)) >= 200


def test_mqtt5_member_subscribes_again_after_a_broker_restart(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    """Mosquitto 2.0.11 keeps a persistent session over a restart (session present) but not
    its shared subscriptions: a member that trusted the session flag sat connected and
    subscribed to nothing, and the broker acknowledged and dropped every later reading
    (found by testkit/chaos/allinone.py)."""
    collector = make_collector(mosquitto=own_mosquitto, client_id="c-restart", protocol="5")
    collector.start(ready_line="collector ready")
    own_mosquitto.restart()  # SIGTERM: the broker saves the session, not its $share filters
    wait_until(
        lambda: "session kept" in collector.log_text()
        and collector.log_text().count("collector ready") >= 2,
        30,
        what="the member back after the broker restart",
    )
    _stream_200_stored_once(own_mosquitto, influxdb, database, site)
    assert collector.stop() == 0


def test_metrics_endpoint_exposes_collector_counters(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    port = free_port()
    collector = make_collector(
        client_id="c-metrics",
        extra_config=f'  metrics_addr: "127.0.0.1:{port}"\n',
    )
    collector.start(ready_line="collector ready")
    stream = StreamPublisher(mosquitto.host, mosquitto.port, site, devices=2, rate=100).start()
    wait_until(lambda: stream.sent >= 20, 10, what="20 messages")
    stream.stop()
    wait_until(lambda: len(stored(influxdb, database, site)) >= 20, 20, what="20 readings")

    def scraped() -> str:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        return text if "kordon_collector_lines_written_total" in text else ""

    text = wait_until(scraped, 10, what="the metrics endpoint")
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#") and "{" not in line
    }
    assert values["kordon_collector_messages_received_total"] >= 20
    assert values["kordon_collector_lines_written_total"] >= 20
    assert "kordon_collector_spool_backlog_bytes" in values
    assert collector.stop() == 0
