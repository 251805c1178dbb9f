"""Mosquitto and InfluxDB 1.x from Debian's packages, as child processes."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx

from testkit.waiting import end_process, wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


# Ports are handed out below Linux's ephemeral range (32768-60999), where no outgoing
# connection takes one, and in a block of their own per pytest-xdist worker: two workers
# asking the kernel for "any free port" at once can both be told the same one before either
# server has bound it. A port is never handed out twice by one process.
_PORT_BASE = 20000
_PORT_BLOCK = 1500
_handed_out: set[int] = set()
_port_lock = threading.Lock()


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...; unset without xdist
    return int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0


def free_port() -> int:
    """A loopback TCP port nothing listens on, this worker's own."""
    low = _PORT_BASE + _worker_index() * _PORT_BLOCK
    candidates = list(range(low, low + _PORT_BLOCK))
    random.shuffle(candidates)
    with _port_lock:
        for port in candidates:
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port left in {low}-{low + _PORT_BLOCK - 1}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class ServerProcess:
    """A server binary as a child process with its log in ``workdir/<name>.log``: subclasses
    give its :meth:`command` and when it is :meth:`ready`."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        try:
            wait_until(self._alive_and_ready, timeout=30, what=f"{self.name} to answer")
        except TimeoutError:
            raise RuntimeError(f"{self.name} did not start; log:\n{self.tail_log()}") from None

    def _alive_and_ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
        return self.ready()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process is None:
            return
        end_process(self.process, sig, timeout)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail_log(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class MosquittoServer(ServerProcess):
    """Mosquitto configured as Kordon ships it: persistence on, queue limit lifted."""

    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        super().__init__(workdir)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.conf_path = workdir / "mosquitto.conf"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def command(self) -> list[str]:
        template = (Path(__file__).resolve().parents[1] / "deploy" / "mosquitto.conf").read_text()
        conf = template.replace("listener 1883", f"listener {self.port} {self.host}")
        conf = conf.replace("/mosquitto/data/", f"{self.workdir}/")
        conf = conf.replace("/mosquitto/log/mosquitto.log", str(self.workdir / "broker.log"))
        if os.geteuid() == 0:
            # Run as root, Mosquitto drops to the 'mosquitto' user, which cannot write the
            # persistence file into a private temporary folder: sessions would not survive.
            conf += "\nuser root\n"
        self.conf_path.write_text(conf + "\nallow_anonymous true\n" + self.extra_conf)
        return [MOSQUITTO, "-c", str(self.conf_path)]

    def ready(self) -> bool:
        return _port_open(self.port)


class InfluxServer(ServerProcess):
    """InfluxDB 1.x (Debian's ``influxdb``) with its data in ``workdir``."""

    name = "influxd"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir)
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.conf_path = workdir / "influxdb.conf"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        d = self.workdir
        self.conf_path.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
"""
        )
        return [INFLUXD, "run", "-config", str(self.conf_path)]

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    def query(self, q: str, db: str) -> list[dict]:
        """Rows of a one-statement query (test convenience, not the product's client)."""
        response = httpx.post(f"{self.url}/query", data={"q": q, "db": db, "epoch": "ns"})
        response.raise_for_status()
        rows: list[dict] = []
        for result in response.json().get("results", []):
            if "error" in result:
                raise RuntimeError(result["error"])
            for series in result.get("series", []):
                for values in series["values"]:
                    row = dict(zip(series["columns"], values, strict=True))
                    row.update(series.get("tags", {}))
                    row["_measurement"] = series.get("name")
                    rows.append(row)
        return rows


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KORDON_CONFIG", None)
    return env
