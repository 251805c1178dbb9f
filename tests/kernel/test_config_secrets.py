"""``kordon config`` hides every secret, whether it came from the file or the environment.

Each secret is a distinct string, so the test can say which one leaked. The real command runs
in a child process, as an operator would run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Secrets in the configuration file, wherever a setting can hold one.
FILE_SECRETS = {
    "mqtt url password": "file-mqtt-pw-1",
    "influx url password": "file-influx-url-pw-2",
    "influx password": "file-influx-pw-3",
    "influx token": "file-influx-token-4",
    "hook pw": "file-hook-pw-5",
    "hook query": "file-hook-query-6",
    "recv pw": "file-recv-pw-7",
    "recv path": "file-recv-path-8",
    "webhook header": "file-header-9",
    "webhook authorization header": "file-bearer-10",
    "email password": "file-smtp-pw-11",
    "snmp community": "file-community-12",
    "snmp v3 auth key": "file-v3-auth-13",
    "snmp v3 priv key": "file-v3-priv-14",
}

CONFIG = """
mqtt:
  url: mqtt://alice:{mqtt url password}@broker.example:1883
influx:
  url: http://bob:{influx url password}@influx.example:8086
  username: bob
  password: {influx password}
  token: {influx token}
fleet:
  snmp:
    community: {snmp community}
    v3_auth_key: {snmp v3 auth key}
    v3_priv_key: {snmp v3 priv key}
notify:
  webhook_url: http://hooks:{hook pw}@hooks.example/kordon?token={hook query}
  receivers:
    - name: oncall
      webhook:
        url: https://pager:{recv pw}@hooks.example/services/T0/{recv path}
        headers:
          X-Token: {webhook header}
          Authorization: "Bearer {webhook authorization header}"
      email:
        to: [oncall@example.org]
        smarthost: smtp.example.org:587
        username: kordon
        password: {email password}
  route: {{receiver: oncall}}
"""

# The same kinds of secret through the environment (the variables the kernel reads, and the
# bridges' secret variables, which must not reach the printed configuration either).
ENV_SECRETS = {
    "KORDON_MQTT_URL": ("mqtt://carol:env-mqtt-pw-21@broker.example:1883", "env-mqtt-pw-21"),
    "KORDON_INFLUX_URL": ("https://dave:env-influx-url-pw-22@influx.example:8086",
                          "env-influx-url-pw-22"),
    "KORDON_INFLUX_TOKEN": ("env-influx-token-23", "env-influx-token-23"),
    "KORDON_WEBHOOK_URL": ("https://erin:env-hook-pw-24@hooks.example/x/env-hook-path-25",
                           "env-hook-pw-24"),
    "KORDON_SNMP_COMMUNITY": ("env-community-26", "env-community-26"),
    "KORDON_SNMP_AUTH_KEY": ("env-v3-auth-27", "env-v3-auth-27"),
    "KORDON_SNMP_PRIV_KEY": ("env-v3-priv-28", "env-v3-priv-28"),
    "KORDON_NUT_PASSWORD": ("env-nut-pw-29", "env-nut-pw-29"),
}


def _kordon_config(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KORDON_")}
    return subprocess.run(
        [sys.executable, "-m", "composition", "--config", str(config), "config"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _leaks(output: str, secrets: dict[str, str]) -> list[str]:
    return [what for what, secret in secrets.items() if secret in output]


def test_no_secret_from_the_file_is_printed(tmp_path: Path) -> None:
    config = tmp_path / "kordon.yaml"
    config.write_text(CONFIG.format_map(FILE_SECRETS), encoding="utf-8")
    done = _kordon_config(config, {})
    assert done.returncode == 0, done.stderr
    assert _leaks(done.stdout + done.stderr, FILE_SECRETS) == []
    out = done.stdout
    # What identifies each setting is still shown.
    assert "mqtt://alice:***@broker.example:1883" in out
    assert "http://bob:***@influx.example:8086" in out
    assert "username: bob" in out and "username: kordon" in out
    assert "https://pager:***@hooks.example/***" in out
    assert "X-Token: '***'" in out
    assert "smarthost: smtp.example.org:587" in out


def test_no_secret_from_the_environment_is_printed(tmp_path: Path) -> None:
    config = tmp_path / "kordon.yaml"
    # The file keeps the receivers, whose secrets have no variable; the variables win.
    config.write_text(CONFIG.format_map(FILE_SECRETS), encoding="utf-8")
    env = {name: value for name, (value, _secret) in ENV_SECRETS.items()}
    done = _kordon_config(config, env)
    assert done.returncode == 0, done.stderr
    secrets = {name: secret for name, (_value, secret) in ENV_SECRETS.items()}
    secrets["KORDON_WEBHOOK_URL path"] = "env-hook-path-25"
    assert _leaks(done.stdout + done.stderr, {**secrets, **FILE_SECRETS}) == []
    assert "mqtt://carol:***@broker.example:1883" in done.stdout
    assert "https://dave:***@influx.example:8086" in done.stdout
    assert "https://erin:***@hooks.example/***" in done.stdout


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("mqtt://u:p%40ss@h:1883", "mqtt://u:***@h:1883"),
        ("mqtt://user-only@h", "mqtt://user-only@h"),
        ("http://h:8086/db?u=me&p=secret", "http://h:8086/db?u=***&p=***"),
        ("http://h:8086", "http://h:8086"),
        ("sqlite:///var/lib/kordon/telemetry.db", "sqlite:///var/lib/kordon/telemetry.db"),
    ],
)
def test_redact_url(url: str, printed: str) -> None:
    from kordon.redact import redact_url

    assert redact_url(url) == printed


def test_redact_finds_secrets_by_key_anywhere() -> None:
    from kordon.redact import redact

    data = {
        "a": {"b": [{"password": "x1", "api_key": "x2", "smtp_password": "x3"}]},
        "headers": {"X-Api-Key": "x4"},
        "tls_key": "/etc/kordon/key.pem",  # a path, not a secret
        "note": "nothing secret",
        "token": None,
    }
    shown = redact(data)
    assert "x1" not in str(shown) and "x2" not in str(shown) and "x3" not in str(shown)
    assert shown["headers"] == {"X-Api-Key": "***"}
    assert shown["tls_key"] == "/etc/kordon/key.pem"
    assert shown["note"] == "nothing secret" and shown["token"] is None
