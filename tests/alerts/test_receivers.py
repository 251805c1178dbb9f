"""Receivers as plugins: the registry, the fan-out to every kind of a receiver, the outbox's
counters under parallel delivery, and configuration errors that stop the alerts role.

Deliveries go to a real HTTP server and a real SMTP server (testkit/receivers.py).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import alerts.notify
from alerts.config import NotifySettings, ReceiverSettings, load
from alerts.dispatch import Notification
from alerts.notify import RECEIVER_KINDS, ReceiverConfig
from alerts.notify.payload import NotifiedAlert, webhook_payload
from alerts.outbox import OutboxSender, fan_out, targets_of
from kordon.config import ConfigError, load_settings
from kordon.storage.alert_store import AlertStore
from testkit import wait_until
from testkit.receivers import SmtpReceiver, WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
NOT_KINDS = {"base", "payload"}  # the modules of alerts/notify that are not receiver kinds


def test_every_receiver_module_is_registered() -> None:
    """A new ``alerts/notify/<kind>.py`` must be named in ``RECEIVER_KINDS``."""
    modules = [m.name for m in pkgutil.iter_modules(alerts.notify.__path__)]
    kinds = [name for name in modules if name not in NOT_KINDS]
    assert kinds, modules
    for name in kinds:
        module = importlib.import_module(f"alerts.notify.{name}")
        configs = [
            value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, ReceiverConfig)
            and value is not ReceiverConfig and value.__module__ == module.__name__
        ]
        assert len(configs) == 1, f"alerts/notify/{name}.py must define one ReceiverConfig"
        config = configs[0]
        assert config.kind == name, f"{config.__name__}.kind should be {name!r}"
        assert RECEIVER_KINDS.get(name) is config, (
            f"add {config.__name__} to RECEIVER_KINDS in alerts/notify/__init__.py"
        )
        assert set(config.secrets) <= set(config.model_fields), config.secrets


def _note(receiver: str, n: int) -> Notification:
    alert = NotifiedAlert(
        labels={"alertname": "MainsPowerLost", "site": "chop", "device": f"ups-{n}"},
        annotations={"summary": f"ups-{n} on battery"},
        status="firing",
        starts_at=1_800_000_000.0 + n,
        ends_at=None,
        fingerprint=f"{n:016x}",
    )
    key = f'0:{{site="chop",n="{n}"}}'
    payload = webhook_payload(receiver=receiver, group_labels={"site": "chop"}, key=key,
                              alerts=[alert])
    return Notification(receiver, key, payload)


def test_a_notification_goes_to_every_kind_of_its_receiver(tmp_path: Path) -> None:
    hook = WebhookReceiver().start()
    smtp = SmtpReceiver(tmp_path).start()
    notify = NotifySettings.model_validate({
        "receivers": [{
            "name": "oncall",
            "webhook": {"url": hook.url("/oncall")},
            "email": {"to": ["oncall@example.org"], "smarthost": f"127.0.0.1:{smtp.port}",
                      "username": smtp.user, "password": smtp.password, "verify_tls": False},
        }],
        "route": {"receiver": "oncall"},
    })
    assert targets_of(notify) == {"oncall": ["oncall/webhook", "oncall/email"]}
    store = AlertStore(tmp_path / "alerts.sqlite")
    rows = fan_out([_note("oncall", 1), _note("nobody", 2)], targets_of(notify))
    assert [target for target, _key, _payload in rows] == ["oncall/webhook", "oncall/email"]
    assert rows[0][1] != rows[1][1]  # each target retries under its own idempotency key
    store.record_notifications(rows, [], [], 1.0)
    sender = OutboxSender(store, notify, lambda: 2.0)
    try:
        assert sender.deliver_due() == 2
        assert len(hook.bodies("/oncall")) == 1
        wait_until(lambda: smtp.messages, 10, what="the e-mail")
        assert sender.stats == {"delivered": 2, "failed_attempts": 0, "given_up": 0}
    finally:
        sender.stop()
        store.close()
        hook.stop()
        smtp.stop()


def test_outbox_counters_stay_exact_under_parallel_delivery(tmp_path: Path) -> None:
    hook = WebhookReceiver().start()
    dead = WebhookReceiver()  # never started: every delivery to it fails
    receivers = [{"name": f"r{i}", "webhook": {"url": hook.url(f"/r{i}")}} for i in range(12)]
    receivers += [{"name": f"d{i}", "webhook": {"url": dead.url(f"/d{i}"), "timeout": "2s"}}
                  for i in range(4)]
    notify = NotifySettings.model_validate({
        "receivers": receivers,
        "route": {"receiver": "r0"},
        "outbox": {"workers": 8, "retry_min": "1h", "retry_max": "1h"},
    })
    store = AlertStore(tmp_path / "alerts.sqlite")
    notes = [_note(f"r{i % 12}", i) for i in range(360)] + [_note(f"d{i}", i) for i in range(4)]
    store.record_notifications(fan_out(notes, targets_of(notify)), [], [], 1.0)
    sender = OutboxSender(store, notify, lambda: 2.0)
    try:
        while sender.deliver_due():
            pass
        assert len(hook.bodies()) == 360
        assert sender.stats == {"delivered": 360, "failed_attempts": 4, "given_up": 0}
        assert sender.failing == {f"d{i}/webhook" for i in range(4)}
    finally:
        sender.stop()
        store.close()
        hook.stop()


def test_receiver_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "kordon.yaml"
    path.write_text(
        "notify:\n"
        "  receivers:\n"
        "    - {name: a, webhook: {url: 'ftp://x'}}\n"
        "    - {name: b, pager: {to: me}}\n"
        "    - {name: c}\n"
        "    - {name: d, email: {to: [x@example.org], smarthost: nowhere}}\n"
        "rules:\n"
        "  BatteryLow: {charge_below: 200}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load(load_settings(path, {}))
    message = str(info.value)
    assert "notify.receivers.0.webhook.url: must be an http:// or https:// URL" in message
    assert (
        "notify.receivers.1: 'pager' is not a receiver kind; use one of webhook, email, "
        "alertmanager" in message
    )
    assert "notify.receivers.2: receiver 'c' needs webhook: or email: or alertmanager:" \
        in message
    assert "notify.receivers.3.email.smarthost: must be host:port" in message
    assert "rules.BatteryLow.charge_below:" in message


def test_kordon_webhook_url_is_the_default_webhook_receiver() -> None:
    settings = load_settings(None, {"KORDON_WEBHOOK_URL": "http://hooks.example/k"})
    notify = load(settings).notify
    default = notify.all_receivers()["default"]
    assert isinstance(default, ReceiverSettings)
    assert list(default.integrations()) == ["webhook"]
    assert targets_of(notify) == {"default": ["default/webhook"]}


@pytest.mark.parametrize("command", [["run", "--roles", "alerts"], ["config"]])
def test_bad_notify_section_stops_the_command(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "kordon.yaml"
    path.write_text("notify:\n  route: {receiver: nobody}\n", encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KORDON_")}
    done = subprocess.run(
        [sys.executable, "-m", "composition", "--config", str(path), *command],
        env={**clean, "KORDON_DATA_DIR": str(tmp_path / "data")},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done
    assert "receiver 'nobody' is not defined; define it under notify.receivers" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
