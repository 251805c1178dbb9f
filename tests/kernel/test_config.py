"""Configuration: defaults, YAML, environment precedence, and errors that name the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kordon.config import ENV_OVERRIDES, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "kordon.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | None = None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env or {})
    return str(info.value)


# --- defaults, file, environment ----------------------------------------------------------------


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(None, {})
    assert isinstance(settings, Settings)
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("127.0.0.1", 1883, False)
    assert settings.mqtt.protocol == "3.1.1"
    assert settings.influx.url == "http://127.0.0.1:8086"
    assert settings.influx.database == "kordon"
    assert settings.influx.token is None
    assert settings.api.addr == "127.0.0.1:8080"
    assert settings.data_dir == Path("./data")
    assert settings.collector.max_payload_bytes == 256 * 1024
    assert settings.collector.max_future == 300.0
    assert settings.fleet.file is None
    assert settings.notify.webhook_url is None


def test_every_documented_variable_is_an_override() -> None:
    expected = {
        "KORDON_MQTT_URL",
        "KORDON_INFLUX_URL",
        "KORDON_INFLUX_DB",
        "KORDON_INFLUX_TOKEN",
        "KORDON_DATA_DIR",
        "KORDON_WEBHOOK_URL",
        "KORDON_FLEET",
        "KORDON_API_ADDR",
    }
    assert expected <= set(ENV_OVERRIDES)


def test_yaml_file_is_read_and_durations_parsed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
mqtt:
  url: mqtt://alice:s%40cret@broker.example:1884
  protocol: "5"
  session_expiry: 2h
influx:
  url: http://bob:pw@influx.example:8086/prefix
  database: fleet
collector:
  flush_interval: 250ms
  max_future: 1m30s
  max_payload_bytes: 1024
api:
  addr: ":9000"
data_dir: /var/lib/kordon
""",
    )
    settings = load_settings(path, {})
    assert settings.mqtt.host == "broker.example" and settings.mqtt.port == 1884
    assert (settings.mqtt.username, settings.mqtt.password) == ("alice", "s@cret")
    assert settings.mqtt.protocol == "5"
    assert settings.mqtt.session_expiry == 7200.0
    assert settings.collector.flush_interval == 0.25
    assert settings.collector.max_future == 90.0
    assert settings.collector.max_payload_bytes == 1024
    assert settings.api.addr == ":9000"
    assert settings.data_dir == Path("/var/lib/kordon")
    target = settings.influx.target()
    assert target.url == "http://influx.example:8086/prefix"  # no credentials in the URL
    assert (target.username, target.password, target.database) == ("bob", "pw", "fleet")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
mqtt:
  url: mqtt://file-broker:1883
  protocol: "5"
influx:
  url: http://file-influx:8086
  database: from_file
  token: file-token
data_dir: /from/file
api:
  addr: 127.0.0.1:1111
""",
    )
    env = {
        "KORDON_MQTT_URL": "mqtts://env-broker",
        "KORDON_INFLUX_URL": "https://env-influx:8087",
        "KORDON_INFLUX_DB": "from_env",
        "KORDON_INFLUX_TOKEN": "env-token",
        "KORDON_DATA_DIR": str(tmp_path / "env-data"),
        "KORDON_WEBHOOK_URL": "http://hooks.example/alert",
        "KORDON_FLEET": str(tmp_path / "fleet.yaml"),
        "KORDON_API_ADDR": "0.0.0.0:2222",
    }
    settings = load_settings(path, env)
    assert settings.mqtt.host == "env-broker"
    assert settings.mqtt.port == 8883 and settings.mqtt.tls  # mqtts default port
    assert settings.mqtt.protocol == "5"  # the rest of the section still comes from the file
    assert settings.influx.url == "https://env-influx:8087"
    assert settings.influx.database == "from_env"
    assert settings.influx.token == "env-token"
    assert settings.data_dir == tmp_path / "env-data"
    assert settings.notify.webhook_url == "http://hooks.example/alert"
    assert settings.fleet.file == tmp_path / "fleet.yaml"
    assert settings.api.addr == "0.0.0.0:2222"


def test_empty_variable_does_not_override(tmp_path: Path) -> None:
    path = write(tmp_path, "influx:\n  database: from_file\n")
    settings = load_settings(path, {"KORDON_INFLUX_DB": "", "KORDON_MQTT_URL": ""})
    assert settings.influx.database == "from_file"
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"


def test_kordon_config_names_the_file_and_an_explicit_path_wins(tmp_path: Path) -> None:
    from_env = write(tmp_path, "influx:\n  database: via_env\n", "env.yaml")
    explicit = write(tmp_path, "influx:\n  database: explicit\n", "explicit.yaml")
    env = {"KORDON_CONFIG": str(from_env)}
    assert load_settings(None, env).influx.database == "via_env"
    assert load_settings(explicit, env).influx.database == "explicit"


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "# nothing yet\n"), {}).influx.database == "kordon"


def test_environment_creates_missing_sections(tmp_path: Path) -> None:
    path = write(tmp_path, "log_level: DEBUG\n")
    settings = load_settings(path, {"KORDON_API_ADDR": "127.0.0.1:9999"})
    assert settings.api.addr == "127.0.0.1:9999" and settings.log_level == "DEBUG"


# --- errors name the key, and the variable when it came from the environment -------------------


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("KORDON_MQTT_URL", "localhost:1883", "mqtt.url"),
        ("KORDON_MQTT_URL", "http://broker:1883", "mqtt.url"),
        ("KORDON_MQTT_URL", "mqtt://broker:99999", "mqtt.url"),
        ("KORDON_MQTT_URL", "mqtt://broker:port", "mqtt.url"),
        ("KORDON_INFLUX_URL", "influx:8086", "influx.url"),
        ("KORDON_INFLUX_URL", "ftp://influx", "influx.url"),
        ("KORDON_API_ADDR", "8080", "api.addr"),
        ("KORDON_API_ADDR", "127.0.0.1:http", "api.addr"),
        ("KORDON_API_ADDR", "127.0.0.1:70000", "api.addr"),
    ],
)
def test_bad_environment_value_names_key_and_variable(variable: str, value: str, key: str) -> None:
    message = error_of(env={variable: value})
    assert f"{key} (from {variable}):" in message


def test_bad_mqtt_url_message_says_how_to_fix() -> None:
    message = error_of(env={"KORDON_MQTT_URL": "localhost:1883"})
    assert "mqtt://" in message


@pytest.mark.parametrize(
    ("text", "key", "needle"),
    [
        ("mqtt:\n  url: broker:1883\n", "mqtt.url", "mqtt://"),
        ("influx:\n  url: influx.example\n", "influx.url", "http://host:8086"),
        ("collector:\n  bogus: 1\n", "collector.bogus", "unknown key"),
        ("mqqt:\n  url: mqtt://x\n", "mqqt", "unknown key"),
        ("mqtt:\n  keep_alive: 10\n", "mqtt.keep_alive", "unknown key"),
        ("collector:\n  flush_interval: 10 minutes\n", "collector.flush_interval", "duration"),
        ("collector:\n  flush_interval: 5x\n", "collector.flush_interval", "duration"),
        ("collector:\n  retry_max: -3\n", "collector.retry_max", "negative"),
        ("mqtt:\n  session_expiry: soon\n", "mqtt.session_expiry", "duration"),
        ("api:\n  addr: localhost\n", "api.addr", "host:port"),
        ("api:\n  addr: 'host:0'\n", "api.addr", "host:port"),
        ("collector:\n  max_payload_bytes: lots\n", "collector.max_payload_bytes", "integer"),
        ("collector:\n  max_payload_bytes: 10\n", "collector.max_payload_bytes", "64"),
        ("collector:\n  metrics_addr: nowhere\n", "collector.metrics_addr", "host:port"),
        ("mqtt:\n  protocol: '4'\n", "mqtt.protocol", "'5' or '3.1.1'"),
        ("influx:\n  database: ''\n", "influx.database", "at least 1"),
        ("log_level: LOUD\n", "log_level", "DEBUG"),
        ("mqtt: 5\n", "mqtt", "dictionary"),
        (
            "api:\n  tokens:\n    - {name: ops, role: viewer, sha256: hunter2}\n",
            "api.tokens.0.sha256",
            "SHA-256",
        ),
    ],
)
def test_bad_file_value_names_the_key(tmp_path: Path, text: str, key: str, needle: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert f"in {path}" in message
    line = next((line for line in message.splitlines() if line.strip().startswith(f"{key}:")), None)
    assert line is not None, message
    assert needle in line, message
    assert "(from " not in line  # it came from the file, not from a variable


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "collector:\n  flush_interval: soon\napi:\n  addr: nowhere\n")
    message = error_of(path, {"KORDON_INFLUX_URL": "nope"})
    assert "collector.flush_interval:" in message
    assert "api.addr:" in message
    assert "influx.url (from KORDON_INFLUX_URL):" in message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    message = error_of(missing)
    assert str(missing) in message and "No such file" in message and "KORDON_CONFIG" in message
    message = error_of(env={"KORDON_CONFIG": str(missing)})
    assert str(missing) in message


def test_unreadable_file(tmp_path: Path) -> None:
    # A directory cannot be read as a file, whoever runs the test (root reads mode 000 files).
    message = error_of(tmp_path)
    assert f"cannot read configuration file {tmp_path}" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt: {}\n")
    path.chmod(0)
    assert "Permission denied" in error_of(path)


@pytest.mark.parametrize("text", ["- mqtt\n- influx\n", "42\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: the top level must be a mapping of sections"


def test_invalid_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt: [unclosed\n")
    assert error_of(path).startswith(f"{path}: not valid YAML")


def test_override_into_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt: broker\n")
    message = error_of(path, {"KORDON_MQTT_URL": "mqtt://broker:1883"})
    assert "section 'mqtt' must be a mapping" in message


# --- the command line -------------------------------------------------------------------------


def _kordon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KORDON_")}
    return subprocess.run(
        [sys.executable, "-m", "composition", *args],
        env={**clean, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_config_with_bad_file_exits_2_with_the_message_on_stderr(tmp_path: Path) -> None:
    path = write(tmp_path, "collector:\n  flush_interval: soon\n", "bad.yaml")
    done = _kordon("--config", str(path), "config")
    assert done.returncode == 2, done
    assert "collector.flush_interval:" in done.stderr
    assert "invalid duration 'soon'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_cli_config_with_bad_variable_names_it(tmp_path: Path) -> None:
    done = _kordon("config", env={"KORDON_MQTT_URL": "broker:1883"})
    assert done.returncode == 2, done
    assert "mqtt.url (from KORDON_MQTT_URL)" in done.stderr


def test_cli_config_prints_the_effective_configuration_without_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "influx:\n  database: printed\n")
    done = _kordon(
        "--config", str(path), "config", env={"KORDON_INFLUX_TOKEN": "s3cret-token-value"}
    )
    assert done.returncode == 0, done.stderr
    assert "database: printed" in done.stdout
    assert "s3cret-token-value" not in done.stdout + done.stderr
    assert "token: '***'" in done.stdout
