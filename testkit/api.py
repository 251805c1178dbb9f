"""The API role against the test servers, in this process, with one token per role.

The API runs for real (uvicorn on a free loopback port, the live MQTT follower, the InfluxDB
refresher, the SQLite alert store); tests talk to it over HTTP like any client.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from api.auth import hash_token
from composition.roles import build_role
from kordon.clock import WALL_CLOCK
from kordon.config import Settings
from kordon.storage.influx import InfluxClient
from testkit import InfluxServer, MosquittoServer, free_port

TOKENS = {
    "viewer": "kdn_test-viewer-token-0123456789abcdef",
    "operator": "kdn_test-operator-token-0123456789abcdef",
    "admin": "kdn_test-admin-token-0123456789abcdef",
}

FLEET = """name: api-test
sites:
  {site}:
    title: Test crossing {site}
    devices:
      ups-1: {{kind: ups, interval: 5s}}
      ups-2: {{kind: ups, interval: 5s}}
      scanner-1: {{kind: scanner, fed_by: ups-1, interval: 5s}}
      radio-1: {{kind: radio, interval: 5s}}
  {site}-b:
    devices:
      ups-1: {{kind: ups, interval: 5s}}
"""


def write_fleet(path: Path, site: str) -> Path:
    path.write_text(FLEET.format(site=site))
    return path


def api_settings(
    workdir: Path,
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    database: str,
    *,
    fleet: Path | None = None,
    **api: Any,
) -> Settings:
    return Settings.model_validate(
        {
            "mqtt": {"url": mosquitto.url},
            "influx": {"url": influxdb.url, "database": database},
            "fleet": {"file": str(fleet) if fleet else None},
            "data_dir": str(workdir / "data"),
            "api": {
                "addr": f"127.0.0.1:{free_port()}",
                "tokens": [
                    {"name": f"test-{role}", "role": role, "sha256": hash_token(token)}
                    for role, token in TOKENS.items()
                ],
                "refresh_interval": 0.5,
                **api,
            },
        }
    )


class RunningApi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.role = build_role("api", settings, WALL_CLOCK)
        host, _, port = settings.api.addr.rpartition(":")
        self.url = f"http://{host}:{port}"

    def __enter__(self) -> RunningApi:
        self.role.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.role.stop()

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


def ups_payload(ts: float, seq: int, status: str, charge: float, runtime: float) -> bytes:
    return orjson.dumps(
        {
            "ts": ts,
            "seq": seq,
            "metrics": {
                "ups.status": status,
                "battery.charge": charge,
                "battery.runtime": runtime,
                "input.voltage": 0.0 if "OB" in status else 230.0,
                "ups.load": 40.0,
            },
        }
    )


def write_history(client: InfluxClient, site: str, device: str, hours: float, step: float) -> int:
    """UPS history written straight to InfluxDB (what the collector would have written)."""
    now = time.time()
    count = int(hours * 3600 / step)
    lines = []
    for k in range(count):
        ts = now - (count - k) * step
        lines.append(
            f"ups,device={device},site={site} battery.charge={50 + (k % 50)}.0,"
            f'battery.runtime={600 + k}.0,input.voltage=230.0,ups.status="OL" '
            f"{int(ts * 1e9)}"
        )
    for start in range(0, len(lines), 5000):
        client.write("\n".join(lines[start : start + 5000]).encode())
    return count

