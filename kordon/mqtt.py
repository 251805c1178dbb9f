"""paho-mqtt client construction shared by every role, per the ``mqtt`` settings."""

from __future__ import annotations

import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kordon.config import MqttSettings


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    persistent: bool,
    manual_ack: bool = False,
) -> paho.Client:
    """A client for ``settings``; ``persistent`` keeps the broker session across reconnects."""
    v5 = settings.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        # Verify the broker always; a client certificate only where one is configured.
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect_properties(settings: MqttSettings, *, persistent: bool) -> Properties | None:
    if settings.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = int(settings.session_expiry) if persistent else 0
    props.ReceiveMaximum = settings.receive_maximum
    return props


def connect_async(client: paho.Client, settings: MqttSettings, *, persistent: bool) -> None:
    """Start connecting; paho's network thread keeps reconnecting with backoff."""
    kwargs: dict[str, object] = {}
    if settings.protocol == "5":
        kwargs["clean_start"] = not persistent
        kwargs["properties"] = connect_properties(settings, persistent=persistent)
    client.connect_async(settings.host, settings.port, int(settings.keepalive), **kwargs)
