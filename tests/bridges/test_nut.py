"""The NUT bridge against a real upsd with dummy-ups drivers, through the real pipeline.

A sequence file replays a power cut on UPS ``main``: on line (with NUT's TRIM flag, which the
contract's ``ups.status`` does not take), on battery with a falling charge, low battery, then
mains back. The bridge publishes it to a real Mosquitto; a real collector stores it in a real
InfluxDB and a real alerts process pages a webhook receiver. UPS ``spare`` has its driver
frozen (upsd: ERR DATA-STALE) and thawed; then upsd stops (both UPSes offline, DeviceOffline),
comes back (online again), and the bridge is SIGKILLed (its MQTT last wills say offline).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bridges.nut.bridge import NutBridge, NutBridgeConfig, tls_options
from bridges.nut.protocol import NutClient, NutError, quote, split_words
from bridges.nutnames import NutReadings, readings_from_nut
from bridges.publisher import DevicePublisher
from kordon.clock import WALL_CLOCK
from kordon.config import MqttSettings
from kordon.model.kinds import DeviceKind
from kordon.model.payload import decode_telemetry
from testkit import InfluxServer, MakeProcess, MosquittoServer, wait_until
from testkit.alerts import webhook_notify
from testkit.bridges import BridgeProcess, MakeBridge, MakeNutServer, NutServer
from testkit.mqtt import Recorder
from testkit.receivers import WebhookReceiver

pytestmark = pytest.mark.skipif(
    not Path("/lib/nut/upsd").exists(), reason="needs Debian's nut-server (scripts/test.sh)"
)

OUTAGE = """ups.mfr: Kordon Test
ups.model: Dummy 1500
ups.serial: 0042
ups.status: OL CHRG TRIM
battery.charge: 97
battery.runtime: 2400
battery.voltage: 27.3
input.voltage: 231.0
input.frequency: 50.0
output.voltage: 230.0
ups.load: 35
ups.temperature: 31.5
TIMER 5
ups.status: OB DISCHRG
input.voltage: 0
input.frequency: 0
battery.voltage: 25.1
battery.charge: 90
battery.runtime: 600
TIMER 1
battery.charge: 80
battery.runtime: 500
TIMER 1
battery.charge: 70
battery.runtime: 420
TIMER 1
battery.charge: 60
battery.runtime: 340
TIMER 1
battery.charge: 50
battery.runtime: 260
TIMER 1
ups.status: OB DISCHRG LB
battery.charge: 19
battery.runtime: 110
TIMER 1
battery.charge: 15
battery.runtime: 80
TIMER 2
ups.status: OL CHRG
input.voltage: 229.0
input.frequency: 50.0
battery.charge: 16
battery.runtime: 900
TIMER 3600
"""
STEADY = """ups.status: OL
battery.charge: 100
battery.runtime: 3000
input.voltage: 230
TIMER 3600
"""

RULES = """rules:
  evaluation_interval: 200ms
  restore_grace: 4s
  MainsPowerLost: {for: 1s}
  BatteryDepletionImminent: {for: 1s, min_span: 1s, min_points: 3, window: 30s}
  DeviceOffline: {default_interval: 1s, min_silence: 3s}
  SiteUnreachable: {min_devices: 3}   # two UPSes going dark together stay two DeviceOffline
"""


def _statuses(recorder: Recorder, device: str) -> list[str]:
    return [m.payload.decode() for m in list(recorder.messages)
            if m.topic.split("/")[4] == device]


def _last_status(recorder: Recorder, device: str) -> str | None:
    seen = _statuses(recorder, device)
    return seen[-1] if seen else None


# ---------------------------------------------------------------------------- protocol


def test_words_round_trip_through_nut_quoting() -> None:
    for word in ["plain", "two words", 'say "hi"', "back\\slash", ""]:
        assert split_words(f"SET VAR ups x {quote(word)}")[-1] == word
    assert split_words('VAR ups ups.status "OB DISCHRG"') == ["VAR", "ups", "ups.status",
                                                              "OB DISCHRG"]


def test_protocol_against_real_upsd(tmp_path: Path, mosquitto: MosquittoServer,
                                    site: str, make_nut_server: MakeNutServer) -> None:
    users = "[monitor]\n  password = s3cret\n  upsmon secondary\n"
    nut = make_nut_server({"alpha": STEADY, "beta": STEADY}, users=users).start()

    async def talk() -> None:
        client = await NutClient.connect("127.0.0.1", nut.port, timeout=5,
                                         username="monitor", password="s3cret")
        try:
            assert (await client.version()).startswith("Network UPS Tools upsd")
            assert await client.list_ups() == {"alpha": "Kordon test alpha",
                                               "beta": "Kordon test beta"}
            variables = await client.list_var("alpha")
            assert variables["ups.status"] == "OL" and variables["battery.charge"] == "100"
            assert await client.get_var("beta", "input.voltage") == "230"
            with pytest.raises(NutError) as missing:
                await client.get_var("alpha", "no.such.var")
            assert missing.value.code == "VAR-NOT-SUPPORTED"
            with pytest.raises(NutError) as unknown:
                await client.list_var("gamma")
            assert unknown.value.code == "UNKNOWN-UPS"
        finally:
            await client.close()
        # Debian's upsd without a certificate refuses STARTTLS: the client must not go on
        # in clear text (and the password is never sent).
        with pytest.raises(NutError) as refused:
            await NutClient.connect("127.0.0.1", nut.port, timeout=5, password="s3cret",
                                    tls=tls_options("127.0.0.1", None, insecure=True))
        assert refused.value.code == "FEATURE-NOT-CONFIGURED"

    async def discover() -> None:
        # Without --ups the bridge publishes every UPS that LIST UPS shows.
        mqtt = MqttSettings(url=mosquitto.url)
        bridge = NutBridge(
            NutBridgeConfig(host="127.0.0.1", port=nut.port, site=site, interval=0.2),
            lambda device: DevicePublisher(mqtt, site, device, f"disc-{site}-{device}"),
            WALL_CLOCK,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(bridge.run(stop))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(telemetry.messages) < 4:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    telemetry = Recorder(mosquitto.host, mosquitto.port, f"kordon/v1/{site}/ups/+/telemetry")
    status = Recorder(mosquitto.host, mosquitto.port, f"kordon/v1/{site}/ups/+/status")
    try:
        asyncio.run(talk())
        asyncio.run(discover())
        devices = {m.topic.split("/")[4] for m in telemetry.messages}
        assert devices == {"alpha", "beta"}
        # A bridge that stops says so for every UPS: a clean disconnect sends no last will.
        # Each UPS has its own MQTT session, so the recorder may see alpha's "offline" before
        # beta's: wait for both, then check that each said exactly online, offline (no
        # duplicate "online" from a status queued while its session was still connecting).
        for device in ("alpha", "beta"):
            wait_until(lambda d=device: _last_status(status, d) == "offline", 10,
                       what=f"{device} offline after the bridge stopped")
            assert _statuses(status, device) == ["online", "offline"], device
    finally:
        telemetry.close()
        status.close()
        nut.stop()


def test_unusual_nut_variables_still_pass_the_contract() -> None:
    variables = {
        "ups.status": "OL CHRG TRIM FSD",
        "battery.charge": "87.5",
        "battery.runtime": "1:57",  # a clock time: kept as text, not a dead-lettered reading
        "ups.serial": "000123",  # stays a string: serials are not numbers
        "ups.delay.shutdown": "20",  # documented number: a float
        "ups.start.auto": "128.00",  # documented yes/no word: stays text whatever it looks like
        "ups.efficiency": "LoadTooLow",  # documented number sent as a word: kept as text
        "input.L1-N.voltage": "231.5",  # three-phase name: lower-cased, "-" as "_"
        "driver.parameter.port": "/dev/ttyS0",  # configuration echo: dropped
        "Bad.Name": "1",
        "9th.sensor": "1",  # no Kordon name can be made of it: dropped, and logged
        "ups.status.extra": "forged",  # the bridge's own name: a driver cannot set it
    }
    readings = readings_from_nut(variables)
    assert readings == [{
        "ups.status": "OL CHRG", "battery.charge": 87.5, "bad.name": 1.0,
        "battery.runtime.text": "1:57", "input.l1_n.voltage": 231.5,
        "ups.delay.shutdown": 20.0, "ups.efficiency": "LoadTooLow", "ups.serial": "000123",
        "ups.start.auto": "128.00", "ups.status.extra": "TRIM FSD",
    }]
    only_extra = readings_from_nut({"ups.status": "WAIT", "battery.charge": "50"})
    assert len(only_extra) == 1
    assert "ups.status" not in only_extra[0] and only_extra[0]["ups.status.extra"] == "WAIT"
    # An ePDU serves hundreds of variables: every one is published, in readings of at most
    # 128 metrics, Kordon's own first.
    many = {f"x.v{i:03d}": str(i) for i in range(300)} | {"battery.charge": "50"}
    parts = readings_from_nut(many)
    assert [len(part) for part in parts] == [128, 128, 45]
    assert next(iter(parts[0])) == "battery.charge"
    merged = {name: value for part in parts for name, value in part.items()}
    assert merged == {"battery.charge": 50.0} | {name: float(v) for name, v in many.items()
                                                  if name != "battery.charge"}
    import orjson

    for sample in (readings, only_extra, parts):
        batch = [{"ts": time.time(), "seq": i, "metrics": m} for i, m in enumerate(sample)]
        assert decode_telemetry(orjson.dumps(batch), DeviceKind.UPS, time.time()).errors == []


def test_the_bridge_says_once_per_variable_what_it_could_not_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    readings = NutReadings()
    with caplog.at_level("WARNING", logger="bridges.nut"):
        for ups in ("a", "b", "c"):
            readings.readings({"ups.status": "OL", "battery.runtime": "64:41",
                               "ups.efficiency": "LoadTooLow", "ups.load": "12"}, ups)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 2, notes
    assert any("battery.runtime" in n and "'64:41'" in n and "battery.runtime.text" in n
               for n in notes)
    assert any("ups.efficiency" in n and "'LoadTooLow'" in n for n in notes)


# ---------------------------------------------------------------------------- pipeline


def test_power_cut_through_the_real_pipeline(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, database: str,
    site: str, hook: WebhookReceiver, make_collector: MakeProcess, make_alerts: MakeProcess,
    make_nut_server: MakeNutServer, make_bridge: MakeBridge,
) -> None:
    collector = make_collector(client_id=f"coll-{site}")
    notify = webhook_notify(
        hook.url("/oncall"), "200ms", "  outbox: {retry_min: 200ms, retry_max: 1s}\n", "500ms"
    )
    engine = make_alerts(notify, rules=RULES, influx=influxdb, database=database,
                         name=f"alerts-{site}")
    collector.start()
    engine.start()
    status = Recorder(mosquitto.host, mosquitto.port, f"kordon/v1/{site}/ups/+/status")
    telemetry = Recorder(mosquitto.host, mosquitto.port, f"kordon/v1/{site}/ups/+/telemetry")
    deadletters = Recorder(mosquitto.host, mosquitto.port, "kordon/v1/deadletter")
    nut: NutServer | None = None
    bridge: BridgeProcess | None = None
    try:
        wait_until(lambda: "collector ready" in collector.log_text(), 30, what="collector")
        wait_until(lambda: "alerts ready" in engine.log_text(), 30, what="alerts")
        nut = make_nut_server({"main": OUTAGE, "spare": STEADY}, folder=tmp_path / "nut")
        bridge = make_bridge(
            ["nut-bridge", "--nut", f"127.0.0.1:{nut.port}", "--site", site,
             "--ups", "main=ups-main", "--ups", "spare=ups-spare", "--interval", "500ms"],
            tmp_path / "bridge",
        )
        # The driver's sequence runs on its own clock from its start, so the bridge is up
        # (and retrying upsd) first: a bridge slow to start on a busy host would otherwise
        # miss the sequence's first seconds (the TRIM phase).
        bridge.start(ready_line="retrying in")
        nut.start()
        for device in ("ups-main", "ups-spare"):
            wait_until(lambda d=device: _last_status(status, d) == "online", 15,
                       what=f"{device} online")

        # Stale data: upsd answers ERR DATA-STALE for a frozen driver.
        nut.pause_driver("spare")
        wait_until(lambda: _last_status(status, "ups-spare") == "offline", 10,
                   what="ups-spare offline while its data is stale")
        nut.resume_driver("spare")
        wait_until(lambda: _last_status(status, "ups-spare") == "online", 10,
                   what="ups-spare online again")

        def seen(name: str, state: str) -> bool:
            return (name, "ups-main", state) in hook.alerts("/oncall")

        for name in ("MainsPowerLost", "BatteryDepletionImminent"):
            wait_until(lambda n=name: seen(n, "firing"), 30, what=f"{name} firing")

        def battery_low_fired() -> bool:
            # NUT's LB fires BatteryLow; its page is folded into the depletion page already
            # sent for this UPS (a built-in inhibition), so it shows in the alert events.
            return bool(influxdb.query(
                """SELECT "summary" FROM alerts WHERE alertname = 'BatteryLow'
                AND device = 'ups-main' AND "state" = 'firing'""", database))

        wait_until(battery_low_fired, 30, what="BatteryLow firing")
        wait_until(lambda: seen("MainsPowerLost", "resolved"), 20, what="mains back")

        def stored() -> list[dict]:
            return influxdb.query(
                f"""SELECT "ups.status", "ups.status.extra", "battery.charge", "ups.serial",
                seq FROM ups WHERE site = '{site}' AND device = 'ups-main'""", database)

        wait_until(lambda: {r["ups.status"] for r in stored()} >= {
            "OL CHRG", "OB DISCHRG", "OB DISCHRG LB"}, 20, what="every phase in InfluxDB")

        # upsd gone: both UPSes offline, and the engine pages DeviceOffline.
        nut.stop_upsd()
        for device in ("ups-main", "ups-spare"):
            wait_until(lambda d=device: _last_status(status, d) == "offline", 10,
                       what=f"{device} offline without upsd")
        wait_until(lambda: seen("DeviceOffline", "firing"), 20, what="DeviceOffline")
        nut.start_upsd()
        for device in ("ups-main", "ups-spare"):
            wait_until(lambda d=device: _last_status(status, d) == "online", 20,
                       what=f"{device} back after upsd restart")

        # The bridge dies: the broker publishes each UPS's last will.
        bridge.kill()
        for device in ("ups-main", "ups-spare"):
            wait_until(lambda d=device: _last_status(status, d) == "offline", 10,
                       what=f"{device} last will")
        sent = [m for m in list(telemetry.messages) if m.topic.split("/")[4] == "ups-main"]
        wait_until(lambda: len(stored()) == len(sent), 10, what="every reading stored")
        rows = stored()
    finally:
        for process in (bridge, engine, collector):
            if process is not None:
                process.stop()
        if nut is not None:
            nut.stop()
        for recorder in (status, telemetry, deadletters):
            recorder.close()

    # Every reading the bridge sent passes the contract, and none was dead-lettered.
    payloads = telemetry.payloads()
    assert payloads
    for payload in payloads:
        assert decode_telemetry(payload, DeviceKind.UPS, time.time()).errors == []
    assert not [p for p in deadletters.payloads() if site.encode() in p]
    assert any(r["ups.status.extra"] == "TRIM" for r in rows), "NUT's TRIM kept aside"
    # Every stored reading is complete: while upsd reconnects to a driver it serves only
    # ups.status "WAIT", which the bridge does not publish.
    assert {r["ups.serial"] for r in rows} == {"0042"}, "a serial stays a string"
    charges = [r["battery.charge"] for r in rows if r["ups.status"] == "OB DISCHRG"]
    assert charges == sorted(charges, reverse=True) and charges[0] > charges[-1]
    seqs = sorted(r["seq"] for r in rows)
    assert len(seqs) == len(set(seqs)), "one point per reading"
