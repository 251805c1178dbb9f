"""Real UPS sources for the bridge tests: NUT's upsd with dummy-ups drivers, and snmpsim.

NUT: Debian's ``nut-server``. ``/usr/sbin/upsd`` is a wrapper that reads /etc/nut, so the
tests run the real binaries in /lib/nut with ``NUT_CONFPATH``/``NUT_STATEPATH`` pointing at a
temporary folder, in the foreground (``-F``) so they are ordinary child processes. Each UPS
is a ``dummy-ups`` driver replaying a ``.seq`` file (``TIMER n`` waits n seconds; at the end
it starts over, so a long last ``TIMER`` holds the final state).

SNMP: snmpsim from PyPI answers from ``.snmprec`` files (``OID|type|value``); the data file's
name is the v1/v2c community and the v3 context name. snmpsim refuses to run as root unless
``SNMPSIM_ALLOW_ROOT=true`` (it would drop to 'nobody', who cannot read this venv).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testkit import KordonProcess, free_port
from testkit.nut_library import Dump
from testkit.servers import ServerProcess
from testkit.waiting import end_process, wait_until

NUT_BIN = Path("/lib/nut")
VENV_BIN = Path(sys.executable).parent


def nut_request(port: int, *lines: str, timeout: float = 1.0) -> list[str]:
    """Send requests to upsd with a plain socket; its answer lines (test probe, not the client)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall("".join(f"{line}\n" for line in (*lines, "LOGOUT")).encode())
        data = b""
        while not data.endswith(b"OK Goodbye\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode().splitlines()


@dataclass(frozen=True, slots=True)
class NutUps:
    """One UPS section of ``ups.conf``: a ``dummy-ups`` driver serving ``file``."""

    name: str
    file: Path  # a .seq (replayed in a loop) or a .dev (read once, then held)
    desc: str
    pollinterval: int | None = None  # seconds; dummy-ups' own default when None

    def section(self) -> str:
        lines = [f"[{self.name}]", "  driver = dummy-ups", f"  port = {_quoted(str(self.file))}",
                 f"  desc = {_quoted(self.desc)}"]
        if self.pollinterval is not None:
            lines.append(f"  pollinterval = {self.pollinterval}")
        return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class NutServer:
    """upsd plus one ``dummy-ups`` driver per UPS, all in one upsd (many UPS sections).

    Made from ``.seq`` texts (:meth:`from_sequences`, the bridge tests) or from dumps of the
    NUT Devices Dumps Library (:meth:`from_dumps`, ``testkit.nut_library``).
    """

    def __init__(self, folder: Path, units: list[NutUps], *, maxage: int = 3,
                 users: str = "") -> None:
        self.folder = folder
        self.state = folder / "s"  # short: upsd talks to drivers over sockets in here
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.units = units
        self.env = {**os.environ, "NUT_CONFPATH": str(folder), "NUT_STATEPATH": str(self.state)}
        (folder / "ups.conf").write_text("\n".join(unit.section() for unit in units))
        (folder / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {self.port}\nMAXAGE {maxage}\n")
        (folder / "upsd.users").write_text(users)
        (folder / "upsd.users").chmod(0o600)
        self.drivers: dict[str, subprocess.Popen[bytes]] = {}
        self.upsd: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_sequences(cls, folder: Path, sequences: dict[str, str], *, maxage: int = 3,
                       users: str = "") -> NutServer:
        """One UPS per ``sequences`` entry (UPS name -> .seq text), polled every second."""
        folder.mkdir(parents=True, exist_ok=True)
        units = []
        for name, text in sequences.items():
            path = folder / f"{name}.seq"
            path.write_text(text)
            units.append(NutUps(name, path, f"Kordon test {name}", pollinterval=1))
        return cls(folder, units, maxage=maxage, users=users)

    @classmethod
    def from_dumps(cls, folder: Path, items: list[Dump], *, maxage: int = 30) -> NutServer:
        """One UPS per library dump, served in dummy-ups' "dummy-once" mode."""
        return cls(folder, [NutUps(item.ups, item.path, item.label) for item in items],
                   maxage=maxage)

    @property
    def names(self) -> list[str]:
        return [unit.name for unit in self.units]

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (self.folder / log_name).open("ab") as log:
            return subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    def start(self, timeout: float = 120) -> NutServer:
        """Start every driver and upsd; wait (``timeout`` s at most) until upsd serves all."""
        for name in self.names:
            self.drivers[name] = self._spawn(
                [str(NUT_BIN / "dummy-ups"), "-a", name, "-u", "root", "-F"], f"driver-{name}.log"
            )
        self.start_upsd()
        wait_until(self._all_serving, timeout, interval=0.2,
                   what=f"upsd to serve all {len(self.units)} UPSes")
        return self

    def start_upsd(self) -> None:
        self.upsd = self._spawn([str(NUT_BIN / "upsd"), "-u", "root", "-F"], "upsd.log")
        wait_until(self._answers, 30, what="upsd to listen")

    def _answers(self) -> bool:
        if self.upsd is not None and self.upsd.poll() is not None:
            raise RuntimeError(f"upsd exited: {(self.folder / 'upsd.log').read_text()}")
        try:
            return bool(nut_request(self.port, "VER"))
        except OSError:
            return False

    def _all_serving(self) -> bool:
        for name, driver in self.drivers.items():
            if driver.poll() is not None:
                log = (self.folder / f"driver-{name}.log").read_text(errors="replace")
                raise RuntimeError(f"dummy-ups for {name} exited: {log}")
        lines = nut_request(self.port, *(f"GET VAR {name} ups.status" for name in self.names),
                            timeout=10)
        answers = [line for line in lines if line.startswith(("VAR ", "ERR "))]
        return len(answers) == len(self.units) and all(
            line.startswith("VAR ") and "WAIT" not in line for line in answers
        )

    def all_variables(self) -> dict[str, dict[str, str]]:
        """What upsd serves for every UPS (``LIST VAR``), read over one connection with the
        test's own probe."""
        from bridges.nut.protocol import split_words

        served: dict[str, dict[str, str]] = {name: {} for name in self.names}
        lines = nut_request(self.port, *(f"LIST VAR {name}" for name in self.names), timeout=30)
        for line in lines:
            if line.startswith("VAR "):
                _, ups, name, value = split_words(line)
                served[ups][name] = value
        return served

    def stop_upsd(self) -> None:
        if self.upsd is not None:
            end_process(self.upsd, timeout=10)
            self.upsd = None

    def pause_driver(self, name: str) -> None:
        """Freeze a driver: upsd answers ERR DATA-STALE for it after MAXAGE seconds."""
        self.drivers[name].send_signal(signal.SIGSTOP)

    def resume_driver(self, name: str) -> None:
        self.drivers[name].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.stop_upsd()
        for driver in self.drivers.values():
            driver.send_signal(signal.SIGCONT)
            end_process(driver, timeout=10)


class SnmpAgent(ServerProcess):
    """snmpsim-command-responder on a free loopback UDP port, serving ``recordings``."""

    name = "snmpsim"

    def __init__(self, workdir: Path, recordings: dict[str, str], *, v3_user: str = "kordon",
                 auth_key: str = "auth-secret-1", priv_key: str = "priv-secret-1") -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.data = workdir / "data"
        self.data.mkdir(exist_ok=True)
        for community, text in recordings.items():
            (self.data / f"{community}.snmprec").write_text(text)
        self.v3_user, self.auth_key, self.priv_key = v3_user, auth_key, priv_key

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "snmpsim-command-responder"),
            f"--data-dir={self.data}",
            f"--cache-dir={self.workdir / 'cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{self.port}",
            f"--v3-user={self.v3_user}",
            f"--v3-auth-key={self.auth_key}", "--v3-auth-proto=SHA",
            f"--v3-priv-key={self.priv_key}", "--v3-priv-proto=AES",
        ]

    def ready(self) -> bool:
        return "Listening at UDP/IPv4 endpoint" in self.log_path.read_text(errors="replace")

    def start(self) -> None:
        if self.log_path.exists():
            self.log_path.unlink()  # ready() reads the log: only this run's lines count
        previous = os.environ.get("SNMPSIM_ALLOW_ROOT")
        os.environ["SNMPSIM_ALLOW_ROOT"] = "true"  # for the child only (see module doc)
        try:
            super().start()
        finally:
            if previous is None:
                del os.environ["SNMPSIM_ALLOW_ROOT"]
            else:
                os.environ["SNMPSIM_ALLOW_ROOT"] = previous


def snmprec(values: dict[str, tuple[int, object]]) -> str:
    """An .snmprec file from OID -> (BER tag, value), sorted by OID as snmpsim expects."""

    def key(oid: str) -> tuple[int, ...]:
        return tuple(int(arc) for arc in oid.split("."))

    return "".join(f"{oid}|{tag}|{value}\n" for oid, (tag, value) in
                   sorted(values.items(), key=lambda item: key(item[0])))


class BridgeProcess(KordonProcess):
    """A bridge as a child process: ``kordon nut-bridge`` / ``kordon snmp-bridge``."""

    def __init__(self, args: list[str], mqtt_url: str, workdir: Path) -> None:
        config = workdir / "bridge.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        config.write_text("log_level: INFO\nmqtt:\n  protocol: '3.1.1'\n")
        super().__init__(args, {"KORDON_CONFIG": str(config), "KORDON_MQTT_URL": mqtt_url},
                         workdir)


MakeNutServer = Callable[..., NutServer]
MakeSnmpAgent = Callable[..., SnmpAgent]
MakeBridge = Callable[..., BridgeProcess]
"""The types of the fixtures of tests/bridges/conftest.py."""
