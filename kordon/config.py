"""Configuration: one YAML file (``KORDON_CONFIG``) plus environment overrides.

Sections: ``mqtt``, ``influx``, ``fleet``, ``rules``, ``notify`` (design brief) and
``collector``, ``api``, ``data_dir``. The environment overrides the essentials
(:data:`ENV_OVERRIDES`). A bad value stops start-up with :class:`ConfigError`, whose message
names the key (or the variable it came from) and says how to fix it.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kordon.durations import Duration

# variable -> dotted key it overrides
ENV_OVERRIDES: dict[str, str] = {
    "KORDON_MQTT_URL": "mqtt.url",
    "KORDON_MQTT_CLIENT_ID": "mqtt.client_id",
    "KORDON_INFLUX_URL": "influx.url",
    "KORDON_INFLUX_DB": "influx.database",
    "KORDON_INFLUX_TOKEN": "influx.token",
    "KORDON_DATA_DIR": "data_dir",
    "KORDON_WEBHOOK_URL": "notify.webhook_url",
    "KORDON_FLEET": "fleet.file",
    "KORDON_API_ADDR": "api.addr",
}


def split_host_port(value: str) -> tuple[str, int]:
    """``host:port`` (an empty host means every interface) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


def http_url(value: str) -> str:
    """Validator: an ``http://`` or ``https://`` URL (receivers, webhooks)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class ConfigError(Exception):
    """Configuration that cannot work. The message is meant for the operator."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _existing_file(value: Path | None) -> Path | None:
    """Validator: a configured certificate or key file must exist when Kordon starts."""
    if value is not None and not value.is_file():
        raise ValueError(f"{value} is not a readable file")
    return value


class MqttSettings(_Section):
    url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="mqtt://[user:pass@]host[:port] or mqtts:// for TLS",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        "3.1.1",
        description="MQTT 5 enables shared subscriptions and session expiry; "
        "3.1.1 is faster in paho and the only one the embedded broker speaks",
    )
    client_id: str | None = Field(None, description="stable per process; default from host name")
    shared_group: str = Field("kordon", description="shared-subscription group prefix (MQTT 5)")
    session_expiry: Duration = Field(3600.0, description="MQTT 5 session expiry interval")
    keepalive: Duration = 30.0
    receive_maximum: int = Field(1000, ge=1, le=65535)
    ca_file: Path | None = Field(
        None, description="mqtts://: CA certificate(s) to verify the broker; default: system CAs"
    )
    cert_file: Path | None = Field(None, description="mqtts://: client certificate (with key_file)")
    key_file: Path | None = Field(None, description="mqtts://: client private key")

    _readable = field_validator("ca_file", "cert_file", "key_file")(_existing_file)

    @model_validator(mode="after")
    def _tls_pair(self) -> MqttSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both or neither")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file, cert_file and key_file need an mqtts:// url")
        return self

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
            raise ValueError("must look like mqtt://user:pass@host:1883 (or mqtts:// for TLS)")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def username(self) -> str | None:
        user = urlsplit(self.url).username
        return unquote(user) if user else None

    @property
    def password(self) -> str | None:
        password = urlsplit(self.url).password
        return unquote(password) if password else None

    def client_id_for(self, role: str) -> str:
        return self.client_id or f"kordon-{role}-{socket.gethostname()}"[:64]


class InfluxSettings(_Section):
    url: str = "http://127.0.0.1:8086"
    database: str = Field("kordon", min_length=1)
    retention_policy: str = ""
    token: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: Duration = 10.0
    gzip: bool = Field(False, description="gzip write bodies; slower on loopback, faster on WAN")
    create_database: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "sqlite" and (parts.netloc or parts.path):
            return value  # Kordon's embedded store, e.g. sqlite:///var/lib/kordon/telemetry.db
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must look like http://host:8086 (or https://), or sqlite:///path/telemetry.db "
                "for the embedded store"
            )
        return value

    def target(self) -> Any:
        """The InfluxDB these settings name, credentials resolved (an ``InfluxTarget``)."""
        from kordon.storage.influx import InfluxTarget

        return InfluxTarget.from_settings(self)


class CollectorSettings(_Section):
    max_payload_bytes: int = Field(256 * 1024, ge=64)
    max_batch: int = Field(10_000, ge=1)
    max_metrics: int = Field(128, ge=1)
    max_string: int = Field(4096, ge=1)
    max_future: Duration = Field(300.0, description="how far ahead of now a ts may be")
    max_new_devices_per_minute: int = Field(
        5000,
        ge=1,
        description="devices seen for the first time admitted per minute; more are "
        "dead-lettered (cardinality guard; fleet-file devices do not count)",
    )
    max_devices: int = Field(
        50_000, ge=1, description="devices known in total; new ones beyond are dead-lettered"
    )
    batch_bytes: int = Field(
        1 << 20, ge=1024, description="InfluxDB write batch size in bytes (about 5,000 lines)"
    )
    flush_interval: Duration = Field(0.5, description="longest wait before a partial batch")
    write_concurrency: int = Field(
        3, ge=1, le=16, description="InfluxDB write requests in flight at once"
    )
    ack_interval: Duration = Field(0.005, description="group-commit window of the spool")
    spool_fsync: bool = Field(True, description="fsync the spool before acknowledging")
    spool_segment_bytes: int = Field(16 * 1024 * 1024, ge=4096)
    retry_max: Duration = Field(30.0, description="longest backoff while InfluxDB is down")
    stats_interval: Duration = Field(30.0, description="how often counters are logged")
    deadletter_payload_bytes: int = Field(4096, ge=0)
    metrics_addr: str | None = Field(
        None, description="host:port for a /metrics endpoint of this role's own, e.g. :9101"
    )

    @field_validator("metrics_addr")
    @classmethod
    def _metrics_addr(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value)
        return value


class RoleSection(BaseModel):
    """A section that belongs to one role, which validates it when it is built.

    The alerts role owns ``rules`` and ``notify`` (``alerts/config``): the kernel keeps them as
    written, so it never imports a role, and ``kordon run --roles alerts`` (and ``kordon config``)
    stop with a message naming the key when they are wrong.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    def raw(self) -> dict[str, Any]:
        return self.model_dump()


class NotifySection(RoleSection):
    """``notify``: the kernel checks only the key an environment variable sets."""

    webhook_url: str | None = Field(
        None, description="KORDON_WEBHOOK_URL: a webhook receiver named 'default'"
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return http_url(value) if value else None

    def raw(self) -> dict[str, Any]:
        data = self.model_dump()
        if data.get("webhook_url") is None:
            del data["webhook_url"]
        return data


class FleetSettings(_Section):
    model_config = ConfigDict(extra="allow", frozen=True)
    file: Path | None = None


ApiRoleName = Literal["viewer", "operator", "admin"]
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class ApiToken(_Section):
    """A bearer token of the API. Only its SHA-256 is configured: the file holds no secret."""

    name: str = Field(
        ..., pattern=r"^[A-Za-z0-9_.@-]{1,64}$", description="who holds it (shown in logs)"
    )
    role: ApiRoleName = Field(
        ...,
        description="viewer reads; operator also acks, silences and runs scenarios; "
        "admin may do everything",
    )
    sha256: str = Field(
        ..., description="hex SHA-256 of the token; `kordon token create` prints it"
    )

    @field_validator("sha256")
    @classmethod
    def _hash(cls, value: str) -> str:
        value = value.strip().lower()
        if not _SHA256_HEX.match(value):
            raise ValueError(
                "must be the 64 hex digits of the token's SHA-256 (never the token itself); "
                "mint one with `kordon token create --role viewer --name NAME`"
            )
        return value


class ApiSettings(_Section):
    addr: str = Field("127.0.0.1:8080", description="host:port the API and the page listen on")
    tokens: list[ApiToken] = Field(default_factory=list, description="bearer tokens, hashed")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS; empty turns CORS off"
    )
    metrics: bool = Field(True, description="serve /metrics (Prometheus text, needs a token)")
    live: bool = Field(True, description="follow MQTT for current state between store reads")
    refresh_interval: Duration = Field(
        30.0,
        gt=0,
        description="how often current state is re-read from InfluxDB (the live "
        "MQTT follower keeps it current in between)",
    )
    state_lookback: Duration = Field(
        86400.0, gt=0, description="how far back current state is looked for in InfluxDB"
    )
    offline_after: float = Field(
        3.0, gt=0, description="intervals of silence after which a device counts as stale"
    )
    max_points: int = Field(5000, ge=10, description="most points one telemetry query returns")
    max_range: Duration = Field(31 * 86400.0, gt=0, description="longest telemetry range")
    scenarios_dir: Path | None = Field(None, description="default: the simulators' library")
    max_scenario_runs: int = Field(2, ge=0, description="scenario runs at the same time")
    max_scenario_speed: float = Field(3600.0, gt=0)
    tls_cert: Path | None = Field(None, description="serve HTTPS with this certificate (PEM)")
    tls_key: Path | None = Field(None, description="private key of tls_cert (PEM)")

    _tls_file = field_validator("tls_cert", "tls_key")(_existing_file)

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self

    @field_validator("addr")
    @classmethod
    def _addr(cls, value: str) -> str:
        split_host_port(value)
        return value

    @field_validator("tokens")
    @classmethod
    def _unique(cls, tokens: list[ApiToken]) -> list[ApiToken]:
        seen: set[str] = set()
        for token in tokens:
            if token.sha256 in seen:
                raise ValueError(f"token {token.name!r} has the same hash as another token")
            seen.add(token.sha256)
        return tokens

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            is_origin = (
                parts.scheme in ("http", "https") and parts.hostname and parts.path in ("", "/")
            )
            if origin != "*" and not is_origin:
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port], e.g. "
                    "https://ops.example.org"
                )
        return [origin.rstrip("/") for origin in origins]


class Settings(_Section):
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    collector: CollectorSettings = CollectorSettings()
    fleet: FleetSettings = FleetSettings()
    rules: RoleSection = RoleSection()
    notify: NotifySection = NotifySection()
    api: ApiSettings = ApiSettings()
    data_dir: Path = Path("./data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the YAML file (``path`` or ``KORDON_CONFIG``), apply the environment, validate."""
    env = os.environ if environ is None else environ
    source = path or env.get("KORDON_CONFIG")
    raw: dict[str, Any] = {}
    if source:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read configuration file {source}: {exc.strerror}; "
                "set KORDON_CONFIG to an existing YAML file"
            ) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections")
        raw = loaded
    origin: dict[str, str] = {}
    for variable, dotted in ENV_OVERRIDES.items():
        value = env.get(variable)
        if value:
            _set_dotted(raw, dotted, value, source or "configuration")
            origin[dotted] = variable
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_invalid(exc, origin=origin, source=source)) from None


def _set_dotted(raw: dict[str, Any], dotted: str, value: str, source: str) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: section {key!r} must be a mapping")
        node = child
    node[leaf] = value


def describe_invalid(
    exc: ValidationError,
    *,
    section: str = "",
    origin: Mapping[str, str] | None = None,
    source: str | Path | None = None,
) -> str:
    """The operator's message for a validation error: one line per key, what is wrong.

    ``section`` prefixes the keys of a role section validated on its own (``notify``).
    """
    origin = origin or {}
    lines = ["invalid configuration" + (f" in {source}" if source else "") + ":"]
    for error in exc.errors():
        key = ".".join(str(part) for part in ((section,) if section else ()) + error["loc"])
        where = f"{key} (from {origin[key]})" if key in origin else key
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; check its spelling against docs/configuration.md"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)
