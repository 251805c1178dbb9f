"""The demo's MQTT broker: Mosquitto as a child process when installed, else amqtt in-process.

Measured on a 2-core machine (docs/simulators.md#benchmark): the default fleet at 300x needs
about 1,260 messages a second; amqtt, pure Python in the demo's own process and GIL, carries
64-159, while Mosquitto carries well over a thousand. So ``kordon demo`` starts Mosquitto when
it finds it (:class:`MosquittoChild`: a free loopback port, a temporary configuration in the
data folder, no persistence, raised in-flight and queue limits; stopped with the demo) and
falls back to :class:`EmbeddedBroker` (amqtt) otherwise, saying which one runs.

amqtt speaks MQTT 3.1.1 only and has no shared subscriptions (design brief), so the demo runs
every role on 3.1.1 with plain subscriptions. Either broker keeps sessions in memory: good for
a demo, not for the field, where Mosquitto with the shipped configuration belongs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class DemoBroker(Protocol):
    url: str
    description: str

    def start(self, timeout: float = 10.0) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...


def find_mosquitto() -> str | None:
    """The mosquitto executable, if installed (it lives in sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in MOSQUITTO_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def mosquitto_version(executable: str) -> str:
    try:
        out = subprocess.run(
            [executable, "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(r"mosquitto version (\S+)", out)
    return match.group(1) if match else ""


def start_demo_broker(data_dir: Path) -> DemoBroker:
    """Mosquitto as a child process if it is installed and starts, else amqtt in-process."""
    executable = find_mosquitto()
    if executable is not None:
        child = MosquittoChild(executable, data_dir)
        try:
            child.start()
            return child
        except RuntimeError as exc:
            log.warning("%s; using the embedded amqtt broker instead", exc)
    broker = EmbeddedBroker()
    broker.start()
    return broker


class MosquittoChild:
    """Mosquitto run by the demo: loopback only, anonymous, nothing persisted; stopped (and,
    should the demo die, told to stop by the kernel) with the demo."""

    def __init__(self, executable: str, data_dir: Path, host: str = "127.0.0.1") -> None:
        self.executable = executable
        self.data_dir = data_dir
        self.host = host
        self.port = 0
        self.version = mosquitto_version(executable)
        self.conf_path = data_dir / "mosquitto-demo.conf"
        self.log_path = data_dir / "mosquitto-demo.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def description(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"Mosquitto{version}, child process"

    def config(self) -> str:
        lines = [
            "# written by kordon demo; removed when it stops",
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            # the demo's collector and API take everything at once: lift the default limits
            # (20 in flight, 1000 queued) that would throttle or drop a 300x stream
            "max_inflight_messages 1000",
            "max_queued_messages 100000",
            "max_packet_size 1048576",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "connection_messages false",
        ]
        if os.geteuid() == 0 and not _user_exists("mosquitto"):
            lines.append("user root")  # nobody to drop privileges to
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # a free port may be taken between choosing and binding
            self.port = _free_port(self.host)
            self.conf_path.write_text(self.config())
            with self.log_path.open("ab") as logfile:
                self.process = subprocess.Popen(
                    [self.executable, "-c", str(self.conf_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=logfile,
                    stderr=logfile,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if _port_open(self.host, self.port):
                    log.info("Mosquitto %s (child process %d) on %s", self.version,
                             self.process.pid, self.url)  # fmt: skip
                    return
                time.sleep(0.05)
            self.stop()
        tail = self.log_path.read_text(errors="replace")[-500:] if self.log_path.exists() else ""
        raise RuntimeError(f"Mosquitto ({self.executable}) did not start: {tail.strip()}")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        with contextlib.suppress(OSError):
            self.conf_path.unlink()


class EmbeddedBroker:
    description = "embedded amqtt, pure Python: slower; install mosquitto for speeds above ~30x"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the embedded MQTT broker did not start")
        if self._error is not None:
            raise RuntimeError(f"the embedded MQTT broker failed: {self._error}")
        log.info("embedded MQTT broker (amqtt, MQTT 3.1.1) on %s", self.url)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        # amqtt logs every connection at INFO; the demo's own log says what matters.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # report any start-up failure to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        broker = Broker(config)
        self._stop = asyncio.Event()
        await broker.start()
        self._ready.set()
        await self._stop.wait()
        await broker.shutdown()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _die_with_parent() -> None:
    """In the child: SIGTERM when the demo dies, even by SIGKILL (Linux prctl)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
