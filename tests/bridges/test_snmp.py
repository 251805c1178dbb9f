"""The SNMP bridge against snmpsim answering from recorded UPS-MIB data.

One agent serves four UPS cards (one recording each, chosen by community or v3 context):
on line (polled over SNMPv1, with objects missing as on many real cards), on battery
(v2c), low battery with an overload alarm (v3 authPriv), and a card that lost its UPS.
Then the agent stops (every UPS offline) and starts again (back online).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from bridges.snmp.mib import to_metrics
from kordon.model.kinds import DeviceKind
from kordon.model.payload import decode_telemetry
from testkit import MosquittoServer, wait_until
from testkit.bridges import MakeBridge, MakeSnmpAgent, snmprec
from testkit.mqtt import Recorder

pytest.importorskip("snmpsim", reason="needs snmpsim (test extra)")

M = "1.3.6.1.2.1.33.1"
INT, TEXT, OID, GAUGE, TICKS = 2, 4, 6, 66, 67
ALARM = f"{M}.6.3"


def _card(*, source: int, battery: int, seconds: int, minutes: int, charge: int,
          volts: int, input_v: int, input_hz: int, alarms: tuple[int, ...] = (),
          skip: tuple[str, ...] = ()) -> str:
    values: dict[str, tuple[int, object]] = {
        "1.3.6.1.2.1.1.1.0": (TEXT, "UPS network card"),
        f"{M}.1.1.0": (TEXT, "ACME Power"),
        f"{M}.1.2.0": (TEXT, "Guardian 3000"),
        f"{M}.1.3.0": (TEXT, "UPS 4.2"),
        f"{M}.1.4.0": (TEXT, "Card 1.9"),
        f"{M}.2.1.0": (INT, battery),
        f"{M}.2.2.0": (INT, seconds),
        f"{M}.2.3.0": (INT, minutes),
        f"{M}.2.4.0": (INT, charge),
        f"{M}.2.5.0": (INT, volts),
        f"{M}.2.7.0": (INT, 29),
        f"{M}.3.2.0": (INT, 1),
        f"{M}.3.3.1.2.1": (INT, input_hz),
        f"{M}.3.3.1.3.1": (INT, input_v),
        f"{M}.4.1.0": (INT, source),
        f"{M}.4.2.0": (INT, 500),
        f"{M}.4.4.1.2.1": (INT, 230),
        f"{M}.4.4.1.4.1": (INT, 1450),
        f"{M}.4.4.1.5.1": (INT, 48),
        f"{M}.6.1.0": (GAUGE, len(alarms)),
    }
    for row, arc in enumerate(alarms, start=1):
        values[f"{M}.6.2.1.2.{row}"] = (OID, f"{ALARM}.{arc}")
        values[f"{M}.6.2.1.3.{row}"] = (TICKS, 1000 * row)
    for oid in skip:
        del values[oid]
    return snmprec(values)


RECORDINGS = {
    "ups-online": _card(source=3, battery=2, seconds=0, minutes=45, charge=100, volts=273,
                        input_v=231, input_hz=500,
                        skip=(f"{M}.2.7.0", f"{M}.4.4.1.4.1")),  # no temperature, no power
    "ups-onbattery": _card(source=5, battery=2, seconds=120, minutes=18, charge=64, volts=251,
                           input_v=0, input_hz=0, alarms=(2,)),
    "ups-lowbattery": _card(source=5, battery=3, seconds=900, minutes=3, charge=12, volts=228,
                            input_v=0, input_hz=0, alarms=(2, 3, 8)),
    "ups-commlost": _card(source=3, battery=2, seconds=0, minutes=45, charge=100, volts=273,
                          input_v=231, input_hz=500, alarms=(20,)),
}


def test_mapping_of_every_output_source() -> None:
    base = {f"{M}.2.1.0": 2, f"{M}.2.4.0": 90}
    cases = {1: None, 2: "OFF", 3: "OL", 4: "OL BYPASS", 5: "OB DISCHRG", 6: "OL", 7: "OL"}
    for source, expected in cases.items():
        metrics = to_metrics({**base, f"{M}.4.1.0": source}, [])
        assert metrics.get("ups.status") == expected
        payload = orjson.dumps({"ts": time.time(), "metrics": metrics})
        assert decode_telemetry(payload, DeviceKind.UPS, time.time()).errors == []
    assert to_metrics({f"{M}.4.1.0": 6}, [])["ups.status.extra"] == "BOOST"
    assert to_metrics({f"{M}.4.1.0": 7}, [])["ups.status.extra"] == "TRIM"
    depleted = to_metrics({f"{M}.4.1.0": 5, f"{M}.2.1.0": 4}, ["BatteryBad"])
    assert depleted["ups.status"] == "OB DISCHRG LB RB"


def _metrics(recorder: Recorder, device: str) -> dict | None:
    for message in reversed(list(recorder.messages)):
        if message.topic.split("/")[4] == device:
            return orjson.loads(message.payload)["metrics"]
    return None


def _last_status(recorder: Recorder, device: str) -> str | None:
    seen = [m.payload.decode() for m in list(recorder.messages) if m.topic.split("/")[4] == device]
    return seen[-1] if seen else None


def test_ups_mib_states_and_an_unreachable_agent(
    tmp_path: Path, mosquitto: MosquittoServer, site: str, make_snmp_agent: MakeSnmpAgent,
    make_bridge: MakeBridge,
) -> None:
    agent = make_snmp_agent(RECORDINGS)
    agent.start()
    target = f"127.0.0.1:{agent.port}"
    fast = ["--interval", "500ms", "--timeout", "500ms", "--retries", "0"]
    auth = {
        "ups-online": ["--community", "ups-online", "--snmp-version", "1"],
        "ups-onbattery": ["--community", "ups-onbattery"],
        "ups-lowbattery": ["--v3-user", agent.v3_user, "--v3-auth-key", agent.auth_key,
                           "--v3-priv-key", agent.priv_key, "--v3-context", "ups-lowbattery"],
        "ups-commlost": ["--community", "ups-commlost"],
    }
    telemetry = Recorder(mosquitto.host, mosquitto.port, f"kordon/v1/{site}/ups/+/telemetry")
    status = Recorder(mosquitto.host, mosquitto.port, f"kordon/v1/{site}/ups/+/status")
    bridges = [
        make_bridge(["snmp-bridge", "--target", target, "--site", site, "--ups-name", device,
                     *credentials, *fast], tmp_path / device)
        for device, credentials in auth.items()
    ]
    try:
        for bridge in bridges:
            bridge.start()
        for device in ("ups-online", "ups-onbattery", "ups-lowbattery"):
            wait_until(lambda d=device: _last_status(status, d) == "online", 20,
                       what=f"{device} online")
        wait_until(lambda: _last_status(status, "ups-commlost") == "offline", 20,
                   what="a card that lost its UPS is offline")

        online = _metrics(telemetry, "ups-online")
        assert online is not None
        assert online["ups.status"] == "OL"
        assert online["battery.charge"] == 100.0 and online["battery.runtime"] == 2700.0
        assert online["battery.voltage"] == 27.3 and online["input.frequency"] == 50.0
        assert online["input.voltage"] == 231.0 and online["ups.load"] == 48.0
        assert online["ups.mfr"] == "ACME Power" and online["ups.firmware.aux"] == "Card 1.9"
        assert "battery.temperature" not in online and "ups.realpower" not in online

        battery = _metrics(telemetry, "ups-onbattery")
        assert battery is not None
        assert battery["ups.status"] == "OB DISCHRG" and battery["battery.charge"] == 64.0
        assert battery["battery.runtime.elapsed"] == 120.0 and battery["input.voltage"] == 0.0
        assert battery["ups.alarm"] == "OnBattery" and battery["ups.alarm.count"] == 1.0
        assert battery["battery.temperature"] == 29.0 and battery["ups.realpower"] == 1450.0

        low = _metrics(telemetry, "ups-lowbattery")
        assert low is not None
        assert low["ups.status"] == "OB DISCHRG LB OVER" and low["battery.runtime"] == 180.0
        assert low["ups.alarm"] == "OnBattery LowBattery OutputOverload"
        assert _metrics(telemetry, "ups-commlost") is None, "stale data is not published"

        agent.stop()
        for device in ("ups-online", "ups-onbattery", "ups-lowbattery"):
            wait_until(lambda d=device: _last_status(status, d) == "offline", 10,
                       what=f"{device} offline while the agent is silent")
        agent.start()
        for device in ("ups-online", "ups-onbattery", "ups-lowbattery"):
            wait_until(lambda d=device: _last_status(status, d) == "online", 20,
                       what=f"{device} back online")
    finally:
        for bridge in bridges:
            bridge.stop()
        agent.stop()
        telemetry.close()
        status.close()

    for payload in telemetry.payloads():
        assert decode_telemetry(payload, DeviceKind.UPS, time.time()).errors == []
    # A stopped bridge says offline (a clean disconnect sends no last will).
    assert all(_last_status(status, d) == "offline" for d in auth)
