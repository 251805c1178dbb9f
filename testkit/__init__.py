"""Real servers for tests and benchmarks: Mosquitto, InfluxDB and Kordon processes.

Nothing here mocks a server: each class starts the Debian package's binary on a free
loopback port with its data in a temporary folder, waits until it answers, and can stop,
kill and restart it with the same data, which is what the fault tests need.
"""

from testkit.processes import KordonProcess, MakeProcess
from testkit.servers import InfluxServer, MosquittoServer, free_port
from testkit.waiting import wait_until

__all__ = [
    "InfluxServer",
    "KordonProcess",
    "MakeProcess",
    "MosquittoServer",
    "free_port",
    "wait_until",
]
