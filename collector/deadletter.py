"""Dead letters: what the collector refused, published to ``kordon/v1/deadletter``.

A dead letter says what was wrong (a stable ``code`` and the ``reason`` for people) and holds
the payload as received (truncated to ``collector.deadletter_payload_bytes``), so it can be
replayed once the device or the limit is fixed. The message it stands for is acknowledged to
the broker only once the broker has taken the dead letter: refused input is never lost
silently, whatever fails in between.

Codes are the :class:`kordon.model.payload.DecodeErrorCode` values for payloads, the
cardinality guard's reasons (``cardinality_rate``, ``cardinality_total``) and the few below;
the same code labels ``kordon_collector_deadlettered_total{reason=...}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as paho

from collector.acks import Token
from kordon.model.payload import DecodeError
from kordon.model.topics import DEADLETTER_TOPIC

log = logging.getLogger(__name__)

TOPIC = "topic"  # the topic is off the MQTT contract
STATUS = "status"  # a status payload other than online/offline
INFLUX_REJECTED = "influx_rejected"  # InfluxDB refused the line for good (e.g. a type conflict)
INTERNAL = "internal"  # the collector failed on the message (a bug: see its log)

MAX_ERRORS = 50  # errors listed in one letter; a batch can hold thousands
_WAIT_SECONDS = 10.0


def encode(
    topic: str,
    payload: bytes,
    code: str,
    errors: Sequence[str | DecodeError],
    now: float,
    source: str,
    payload_limit: int,
) -> bytes:
    """The dead-letter message: enough to see what was wrong and to replay it once fixed.

    ``errors`` is never empty; its first entry is the letter's ``reason``.
    """
    texts = [str(error) for error in errors[:MAX_ERRORS]]
    shown = payload[:payload_limit]
    return orjson.dumps(
        {
            "topic": topic,
            "code": str(code),
            "reason": texts[0],
            "errors": texts,
            "payload": shown.decode("utf-8", errors="replace"),
            "payload_bytes": len(payload),
            "truncated": len(shown) < len(payload),
            "received_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "source": source,
        }
    )


class DeadLetterPublisher:
    """Publishes dead letters at QoS 1 on the collector's own MQTT connection.

    Owns the client's ``on_publish`` callback: a letter published for a received message
    carries that message's ack token, released once the broker acknowledges the letter.
    """

    def __init__(self, client: paho.Client, release: Callable[[list[Token]], object]) -> None:
        self._client = client
        self._release = release
        self._tokens: dict[int, Token] = {}
        self._lock = threading.Lock()
        client.on_publish = self._on_publish

    def publish(self, letter: bytes, token: Token | None) -> None:
        """Publish without waiting (MQTT network thread); ``token`` is released on PUBACK."""
        info = self._client.publish(DEADLETTER_TOPIC, letter, qos=1)
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            log.error("dead-letter queue full; the message stays unacknowledged")
            return
        if token is not None:
            with self._lock:
                self._tokens[info.mid] = token

    def publish_and_wait(self, letter: bytes) -> bool:
        """Publish and wait for the broker's PUBACK (writer thread); whether it was taken."""
        info = self._client.publish(DEADLETTER_TOPIC, letter, qos=1)
        try:
            info.wait_for_publish(timeout=_WAIT_SECONDS)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def _on_publish(
        self, _client: object, _userdata: object, mid: int, _reason: object, _props: object
    ) -> None:
        with self._lock:
            token = self._tokens.pop(mid, None)
        if token is not None:
            self._release([token])
