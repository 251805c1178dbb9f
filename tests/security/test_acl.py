"""`kordon devices provision` against a real Mosquitto 2.0.11 with the written password file
and ACL, and a real collector on its read-only account writing to a real InfluxDB.

A device cannot publish as another device or another site, an unknown client cannot connect,
a role account cannot publish telemetry, and nothing any of them tried reaches InfluxDB.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from composition.devices import check_password, hash_password, provision, read_passwd
from testkit import InfluxServer, MakeProcess, MosquittoServer, wait_until

FLEET = """\
name: acl-test
sites:
  {site}:
    title: ACL test
    devices:
      ups-1: {{kind: ups, model: Liebert GXT3-3000, base_load_w: 900}}
      ups-2: {{kind: ups, model: Liebert GXT3-3000, base_load_w: 900}}
  {other}:
    title: another site
    devices:
      ups-1: {{kind: ups, model: Liebert GXT3-3000, base_load_w: 900}}
"""


def _provision(fleet: Path, out: Path, *extra: str) -> dict[str, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "composition",
            "devices",
            "provision",
            str(fleet),
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.strip())


class Client:
    def __init__(self, broker: MosquittoServer, username: str | None, password: str | None):
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sec-{uuid.uuid4().hex[:8]}"
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.refused: Any = None
        self.done = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.done.wait(10), f"no CONNACK for {username}"

    def _on_connect(self, _c: object, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            self.refused = reason
        self.done.set()

    def try_publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(path), "u1", "s3cret"], check=True)
    hashed = read_passwd(path)["u1"]
    assert check_password("s3cret", hashed)
    assert not check_password("s3cret!", hashed)
    assert hash_password("x").startswith("$7$101$")


def test_reprovisioning_keeps_passwords_and_prunes_only_on_request() -> None:
    accounts, new, stale = provision(["s/ups/a", "s/ups/b"], {})
    assert set(new) == {
        "s/ups/a",
        "s/ups/b",
        "kordon-collector",
        "kordon-alerts",
        "kordon-api",
        "kordon-sim",
        "healthcheck",
    }
    again, new2, stale2 = provision(["s/ups/a"], accounts)
    assert new2 == {} and stale2 == ["s/ups/b"] and again == accounts
    pruned, _, _ = provision(["s/ups/a"], accounts, prune=True)
    assert "s/ups/b" not in pruned and pruned["s/ups/a"] == accounts["s/ups/a"]
    assert stale == []


@pytest.fixture
def secured(tmp_path: Path) -> Any:
    site, other = f"acl-{uuid.uuid4().hex[:6]}", f"oth-{uuid.uuid4().hex[:6]}"
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.format(site=site, other=other))
    out = tmp_path / "mosquitto-auth"
    creds = _provision(fleet, out)
    assert _provision(fleet, out) == {}  # printed once: a second run has nothing new
    assert (out / "passwd").stat().st_mode & 0o077 == 0
    broker = MosquittoServer(
        tmp_path / "secured-broker",
        extra_conf=(
            f"allow_anonymous false\npassword_file {out / 'passwd'}\nacl_file {out / 'acl'}\n"
        ),
    )
    broker.start()
    yield broker, creds, site, other
    broker.stop()


def test_device_cannot_speak_for_others_and_nothing_reaches_influxdb(
    secured: Any, tmp_path: Path, influxdb: InfluxServer, database: str,
    make_collector: MakeProcess,
) -> None:
    broker, creds, site, other = secured
    me = f"{site}/ups/ups-1"
    collector_url = broker.url.replace(
        "mqtt://", f"mqtt://kordon-collector:{creds['kordon-collector']}@"
    )
    collector = make_collector(mosquitto=broker, client_id="sec-col")
    collector.env["KORDON_MQTT_URL"] = collector_url  # the read-only account
    collector.start(ready_line="collector ready")
    clients: list[Client] = []

    def connect(username: str | None, password: str | None) -> Client:
        client = Client(broker, username, password)
        clients.append(client)
        return client

    now = time.time()

    def reading(seq: int) -> bytes:
        return orjson.dumps({"ts": now - 60 + seq, "seq": seq, "metrics": {"battery.charge": 9.0}})

    try:
        device = connect(me, creds[me])
        assert device.refused is None
        device.try_publish(f"kordon/v1/{me}/telemetry", reading(0))
        wait_until(
            lambda: influxdb.query(f"SELECT seq FROM ups WHERE site='{site}'", database),
            20,
            what="the device's own reading",
        )
        forbidden = [
            f"kordon/v1/{site}/ups/ups-2/telemetry",  # another device of its site
            f"kordon/v1/{other}/ups/ups-1/telemetry",  # the same name at another site
            f"kordon/v1/{site}/ups/ups-2/status",  # a false last will for another device
            f"kordon/v1/{site}/scanner/ups-1/telemetry",  # itself under another kind
            "kordon/v1/deadletter",
        ]
        for topic in forbidden:
            # A publish outside the ACL is dropped and the connection closed (2.0.11).
            intruder = connect(me, creds[me])
            assert intruder.refused is None
            intruder.try_publish(topic, reading(1))
            intruder.close()
        # Role accounts only read (the simulator's is the one role that speaks for devices).
        for role in ("kordon-collector", "kordon-alerts", "kordon-api"):
            reader = connect(role, creds[role])
            assert reader.refused is None
            reader.try_publish(f"kordon/v1/{site}/ups/ups-2/telemetry", reading(2))
            reader.close()
        for username, password in (
            (me, "wrong-password"),
            ("stranger/ups/x", "whatever"),
            (None, None),  # anonymous
            (f"{site}/ups/ups-2", creds[me]),  # someone else's password
        ):
            stranger = connect(username, password)
            assert stranger.refused is not None, username
        # The last message of the device marks the end of everything sent before it.
        device = connect(me, creds[me])
        device.try_publish(f"kordon/v1/{me}/telemetry", reading(3))
        wait_until(
            lambda: len(influxdb.query(f"SELECT seq FROM ups WHERE site='{site}'", database)) >= 2,
            20,
            what="the device's closing reading",
        )
        rows = influxdb.query("SELECT seq, device, site FROM ups", database)
        assert sorted((row["site"], row["device"], row["seq"]) for row in rows) == [
            (site, "ups-1", 0),
            (site, "ups-1", 3),
        ]
        status = influxdb.query("SELECT * FROM device_status", database)
        assert status == []
    finally:
        for client in clients:
            client.close()
        assert collector.stop() == 0, collector.tail_log()
