"""A paho-mqtt subscriber that does nothing with its messages: the client library's ceiling.

Usage: bare_paho_sub.py HOST PORT CLIENT_ID COUNT PROTOCOL. COUNT 0 only creates the
persistent session and leaves; otherwise prints messages per second once COUNT arrived.
"""

import sys
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

host, port, client_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count, protocol = int(sys.argv[4]), sys.argv[5]
v5 = protocol == "5"
client = paho.Client(
    CallbackAPIVersion.VERSION2,
    client_id=client_id,
    protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
    clean_session=None if v5 else False,
)
received = 0
done = threading.Event()


def on_message(*_args: object) -> None:
    global received
    received += 1
    if received >= count:
        done.set()


client.on_message = on_message
client.on_connect = lambda c, *_a: c.subscribe("kordon/v1/+/+/+/telemetry", qos=1)
kwargs: dict = {}
if v5:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 1000
    kwargs = {"clean_start": False, "properties": props}
client.connect(host, port, **kwargs)
started = time.perf_counter()
client.loop_start()
if count == 0:
    time.sleep(1)
else:
    done.wait(600)
print(count / (time.perf_counter() - started) if count else 0)
client.disconnect()
client.loop_stop()
