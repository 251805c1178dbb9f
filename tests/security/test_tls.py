"""TLS for MQTT and for the API, with a CA and certificates the test generates.

Mosquitto gets a TLS listener that requires client certificates; the collector connects with
``mqtts://`` and ``mqtt.ca_file/cert_file/key_file`` and stores what a device published over
TLS. A client without a certificate is refused, and a client that trusts another CA refuses
the broker. The API serves HTTPS with ``api.tls_cert/tls_key``.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from kordon.config import ConfigError, load_settings
from testkit import (
    InfluxServer,
    KordonProcess,
    MakeProcess,
    MosquittoServer,
    free_port,
    wait_until,
)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, key: Any, cert: x509.Certificate) -> tuple[Path, Path]:
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def make_ca(folder: Path, common: str = "Kordon test CA") -> tuple[Path, Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, _ = _write(folder, common.replace(" ", "-"), key, cert)
    return cert_path, key, cert


def issue(
    folder: Path, stem: str, ca_key: Any, ca_cert: x509.Certificate, *, server: bool
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(stem))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return _write(folder, stem, key, builder.sign(ca_key, hashes.SHA256()))


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "pki"
    folder.mkdir()
    ca, ca_key, ca_cert = make_ca(folder)
    other_ca, _, _ = make_ca(folder, "Another CA")
    server_cert, server_key = issue(folder, "broker", ca_key, ca_cert, server=True)
    client_cert, client_key = issue(folder, "kordon-collector", ca_key, ca_cert, server=False)
    device_cert, device_key = issue(folder, "device", ca_key, ca_cert, server=False)
    return {
        "ca": ca,
        "other_ca": other_ca,
        "server_cert": server_cert,
        "server_key": server_key,
        "client_cert": client_cert,
        "client_key": client_key,
        "device_cert": device_cert,
        "device_key": device_key,
    }


@pytest.fixture
def tls_broker(tmp_path: Path, pki: dict[str, Path]) -> Any:
    tls_port = free_port()
    server = MosquittoServer(
        tmp_path / "tls-broker",
        extra_conf=(
            f"listener {tls_port} 127.0.0.1\n"
            f"cafile {pki['ca']}\ncertfile {pki['server_cert']}\nkeyfile {pki['server_key']}\n"
            "require_certificate true\n"
        ),
    )
    server.start()
    wait_until(lambda: _port_open(tls_port), 10, what="the TLS listener")
    yield server, tls_port
    server.stop()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tls_client(
    port: int, ca: Path, cert: Path | None = None, key: Path | None = None
) -> tuple[paho.Client, dict[str, Any]]:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"tls-{uuid.uuid4().hex[:8]}")
    client.tls_set(
        ca_certs=str(ca),
        certfile=str(cert) if cert else None,
        keyfile=str(key) if key else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(_c: object, _u: object, _f: object, reason: Any, _p: object) -> None:
        outcome["reason"] = reason
        done.set()

    client.on_connect = on_connect
    try:
        client.connect("127.0.0.1", port)
    except (ssl.SSLError, OSError) as exc:
        outcome["error"] = exc
        return client, outcome
    client.loop_start()
    done.wait(5)
    return client, outcome


def test_collector_over_mutual_tls_stores_what_a_device_sent_over_tls(
    tmp_path: Path,
    tls_broker: Any,
    pki: dict[str, Path],
    influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    broker, tls_port = tls_broker
    collector = make_collector(
        mosquitto=broker,
        client_id="tls-collector",
        extra_config="",
    )
    config = Path(collector.env["KORDON_CONFIG"])
    config.write_text(
        config.read_text().replace(
            "mqtt:\n",
            f"mqtt:\n  ca_file: {pki['ca']}\n  cert_file: {pki['client_cert']}\n"
            f"  key_file: {pki['client_key']}\n",
        )
    )
    collector.env["KORDON_MQTT_URL"] = f"mqtts://127.0.0.1:{tls_port}"
    collector.start(ready_line="collector ready")
    device, outcome = _tls_client(tls_port, pki["ca"], pki["device_cert"], pki["device_key"])
    try:
        assert "error" not in outcome and not outcome["reason"].is_failure, outcome
        payload = orjson.dumps({"ts": time.time() - 1, "seq": 7, "metrics": {"battery.charge": 1}})
        device.publish(f"kordon/v1/{site}/ups/u1/telemetry", payload, qos=1).wait_for_publish(10)
        rows = wait_until(
            lambda: influxdb.query(f"SELECT seq FROM ups WHERE site='{site}'", database),
            20,
            what="the reading sent over TLS",
        )
        assert [row["seq"] for row in rows] == [7]
    finally:
        device.disconnect()
        device.loop_stop()
        assert collector.stop() == 0, collector.tail_log()

    # No client certificate: the broker refuses the handshake.
    bare, outcome = _tls_client(tls_port, pki["ca"])
    bare.loop_stop()
    assert "error" in outcome or "reason" not in outcome or outcome["reason"].is_failure
    # A client that trusts another CA refuses the broker's certificate.
    wrong, outcome = _tls_client(tls_port, pki["other_ca"], pki["device_cert"], pki["device_key"])
    wrong.loop_stop()
    assert isinstance(outcome.get("error"), ssl.SSLCertVerificationError), outcome


def test_mqtt_tls_settings_are_checked(tmp_path: Path, pki: dict[str, Path]) -> None:
    config = tmp_path / "k.yaml"
    config.write_text(f"mqtt:\n  url: mqtts://broker:8883\n  cert_file: {pki['client_cert']}\n")
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        load_settings(config, environ={})
    config.write_text(f"mqtt:\n  url: mqtt://broker:1883\n  ca_file: {pki['ca']}\n")
    with pytest.raises(ConfigError, match="need an mqtts:// url"):
        load_settings(config, environ={})
    config.write_text("mqtt:\n  url: mqtts://broker\n  ca_file: /nonexistent/ca.pem\n")
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file: .*not a readable file"):
        load_settings(config, environ={})
    ok = tmp_path / "ok.yaml"
    ok.write_text(f"mqtt:\n  url: mqtts://broker\n  ca_file: {pki['ca']}\n")
    settings = load_settings(ok, environ={})
    assert settings.mqtt.port == 8883 and settings.mqtt.tls


def test_api_serves_https(
    tmp_path: Path, pki: dict[str, Path], mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    port = free_port()
    config = tmp_path / "api.yaml"
    config.write_text(
        f"api:\n  live: false\n  tls_cert: {pki['server_cert']}\n  tls_key: {pki['server_key']}\n"
    )
    api = KordonProcess(
        ["run", "--roles", "api"],
        {
            "KORDON_CONFIG": str(config),
            "KORDON_API_ADDR": f"127.0.0.1:{port}",
            "KORDON_MQTT_URL": mosquitto.url,
            "KORDON_INFLUX_URL": influxdb.url,
            "KORDON_DATA_DIR": str(tmp_path / "data"),
        },
        tmp_path / "api",
    )
    api.start(ready_line=f"API and operations page on https://127.0.0.1:{port}/")
    try:
        response = httpx.get(
            f"https://127.0.0.1:{port}/healthz", verify=ssl.create_default_context(cafile=pki["ca"])
        )
        assert response.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(
                f"https://127.0.0.1:{port}/healthz",
                verify=ssl.create_default_context(cafile=pki["other_ca"]),
            )
    finally:
        assert api.stop() == 0, api.tail_log()
