"""The compose stack: the file parses, every service can be built or pulled, every variable it
gives Kordon is one Kordon reads (and validates), and the broker's shipped password file and
ACL do what docs/dashboards.md says, checked against a real Mosquitto.

Docker itself is not run here (no daemon in the test environment); ``docker-compose config``
parses and interpolates the file exactly as ``up`` would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from kordon.config import ENV_OVERRIDES, load_settings
from testkit import MosquittoServer, wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
KORDON_VARIABLES = set(ENV_OVERRIDES) | {"KORDON_CONFIG"}
KORDON_SERVICES = {"collector", "alerts", "api", "sim"}
DOCKER_COMPOSE = shutil.which("docker-compose")


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KORDON_", "SIM_"))}
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE), "--profile", "sim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """Services as compose resolves them (anchors merged, variables at their defaults)."""
    if DOCKER_COMPOSE:
        result = _compose("config")
        assert result.returncode == 0, result.stderr
        return yaml.safe_load(result.stdout)["services"]
    return yaml.safe_load(COMPOSE.read_text())["services"]  # anchors merge in PyYAML too


@pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose is not installed (apt-get install docker-compose)",
)
def test_compose_file_parses() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr
    names = _compose("config", "--services").stdout.split()
    assert set(names) == {"mosquitto", "influxdb", "grafana", "collector", "alerts", "api", "sim"}


def test_every_service_has_an_image_or_a_build(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
    assert services["influxdb"]["image"] == "influxdb:1.8"
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    for name in KORDON_SERVICES:  # one image for every role
        assert services[name]["image"] == services["collector"]["image"], name


def test_kordon_services_set_only_variables_kordon_reads(services: dict[str, Any]) -> None:
    for name in KORDON_SERVICES:
        environment = services[name].get("environment") or {}
        unknown = set(environment) - KORDON_VARIABLES
        assert not unknown, f"{name} sets {sorted(unknown)}, which Kordon does not read"
    for name, service in services.items():  # nor may another service invent a KORDON_ name
        environment = service.get("environment") or {}
        invented = {k for k in environment if k.startswith("KORDON_")} - KORDON_VARIABLES
        assert not invented, f"{name} sets {sorted(invented)}"


def test_kordon_services_configuration_is_valid(services: dict[str, Any]) -> None:
    """Kordon's own validation accepts what compose gives each role."""
    for name in KORDON_SERVICES:
        environment = {k: str(v) for k, v in (services[name].get("environment") or {}).items()}
        assert environment["KORDON_CONFIG"] == "/etc/kordon/kordon.yaml"
        environment["KORDON_CONFIG"] = str(ROOT / "deploy" / "kordon.yaml")
        settings = load_settings(environ=environment)
        assert settings.mqtt.host == "mosquitto" and settings.mqtt.username
        assert settings.influx.url == "http://influxdb:8086"
        assert str(settings.data_dir) == "/var/lib/kordon"
    collector = load_settings(
        environ={
            **{k: str(v) for k, v in services["collector"]["environment"].items()},
            "KORDON_CONFIG": str(ROOT / "deploy" / "kordon.yaml"),
        }
    )
    assert collector.collector.metrics_addr == "0.0.0.0:9101"  # what its healthcheck reads


def test_mounted_files_exist_and_services_are_checked(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith(("/", ".")):
                path = Path(source) if source.startswith("/") else ROOT / source
                assert path.exists(), f"{name} mounts {source}, which does not exist"
    for name in ("mosquitto", "influxdb", "grafana", "collector", "api"):
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"
    assert services["sim"]["profiles"] == ["sim"]
    assert services["sim"]["command"][0] == "simulate"


def test_dockerfile_runs_kordon_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert 'ENTRYPOINT ["kordon"]' in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


# --- the broker's shipped password file and ACL, on a real Mosquitto -------------------------


class AuthenticatedMosquitto(MosquittoServer):
    """Mosquitto with deploy/mosquitto.conf plus deploy/mosquitto/auth.conf, as compose runs it."""

    def command(self) -> list[str]:
        conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
        conf = conf.replace("listener 1883", f"listener {self.port} {self.host}")
        conf = conf.replace("/mosquitto/data/", f"{self.workdir}/")
        conf = conf.replace("/mosquitto/log/mosquitto.log", str(self.workdir / "broker.log"))
        auth = (ROOT / "deploy" / "mosquitto" / "auth.conf").read_text()
        auth = auth.replace("/kordon/mosquitto/", f"{ROOT / 'deploy' / 'mosquitto'}/")
        auth = auth.replace("log_dest stdout", "")
        root = "\nuser root\n" if os.geteuid() == 0 else "\n"
        self.conf_path.write_text(conf + "\n" + auth + root)
        return ["mosquitto", "-c", str(self.conf_path)]


class Client:
    def __init__(self, broker: MosquittoServer, username: str, password: str) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"acl-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(username, password)
        self.refused: Any = None
        self.connected = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            self.refused = reason
        self.connected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    server = AuthenticatedMosquitto(tmp_path / "auth-mosquitto")
    server.start()
    yield server
    server.stop()


def test_shipped_acl_confines_each_device_to_its_own_topics(broker: MosquittoServer) -> None:
    clients: list[Client] = []

    def connect(username: str, password: str) -> Client:
        client = Client(broker, username, password)
        clients.append(client)
        assert client.connected.wait(10), username
        return client

    try:
        collector = connect("kordon-collector", "demo-collector")
        assert collector.refused is None
        subscribed = threading.Event()
        collector.client.on_subscribe = lambda *_a: subscribed.set()
        collector.client.subscribe("kordon/v1/#", qos=1)
        assert subscribed.wait(10)

        device = connect("uzhhorod/ups/ups-scan-1", "demo-ups-scan-1")
        assert device.refused is None
        device.client.publish(
            "kordon/v1/uzhhorod/ups/ups-scan-1/telemetry", b"{}", qos=1
        ).wait_for_publish(10)
        device.client.publish(
            "kordon/v1/uzhhorod/ups/ups-scan-1/status", b"online", qos=1, retain=True
        ).wait_for_publish(10)
        for topic in (
            "kordon/v1/uzhhorod/ups/ups-it/telemetry",  # another device of its site
            "kordon/v1/chop/ups/ups-scan-1/telemetry",  # the same name at another site
            "kordon/v1/uzhhorod/ups/ups-it/status",  # a false last will for another device
            "kordon/v1/deadletter",
        ):
            # Measured on Mosquitto 2.0.11: a publish outside the ACL is dropped and the
            # connection closed, so each attempt gets a connection of its own.
            intruder = connect("uzhhorod/ups/ups-scan-1", "demo-ups-scan-1")
            info = intruder.client.publish(topic, b"{}", qos=1)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(5)
            intruder.close()
        # The simulator's account may speak for any device; its message marks the end.
        sim = connect("kordon-sim", "demo-sim")
        sim.client.publish(
            "kordon/v1/chop/radio/radio-9/status", b"online", qos=1
        ).wait_for_publish(10)
        wait_until(lambda: len(collector.messages) >= 3, 10, what="the allowed messages")
        assert sorted(topic for topic, _ in collector.messages) == [
            "kordon/v1/chop/radio/radio-9/status",
            "kordon/v1/uzhhorod/ups/ups-scan-1/status",
            "kordon/v1/uzhhorod/ups/ups-scan-1/telemetry",
        ]

        stranger = connect("uzhhorod/ups/ups-scan-1", "wrong-password")
        assert stranger.refused is not None
        anonymous = connect("", "")
        assert anonymous.refused is not None
    finally:
        for client in clients:
            client.close()
