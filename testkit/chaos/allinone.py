"""All in one: every part of the pipeline killed once, in the same run (issue 16).

The whole high-availability topology runs for real on loopback::

    StreamPublisher (numbered UPS readings, QoS 1), an incident site, a lone UPS
      --> Mosquitto (deploy/mosquitto.conf: persistence, no queue limit)
            |--> collector a, collector b --> their own spools --> InfluxDB
            '--> engine a, engine b (``kordon run --roles alerts``, own data dirs)
                   --> every alert pushed to both nodes of a 2-node Alertmanager cluster
                       (deploy/alertmanager.yml, short timings) --> webhook --> HTTP receiver

A 3-UPS site goes on battery (one SitePowerOutage page; its UPS' MainsPowerLost are
inhibited by Alertmanager) together with the UPS of another site whose radio keeps grid power
(MainsPowerLost), and both come back. On one schedule the run SIGKILLs collector a and
restarts it, stops InfluxDB (a minute in ``bench/chaos.py --all-in-one``, 12 s in CI),
SIGKILLs engine a mid-incident and restarts it, SIGKILLs the Alertmanager node that sent the
incident's pages and restarts it (it rejoins the cluster under a new name, so the resolved
pages go through a cluster with a restarted member), restarts Mosquitto, and starts InfluxDB.

The two collectors run in one of two modes (``collectors``):

- ``"mirrored"`` (CI, and ``bench/chaos.py --all-in-one``'s default): a mirrored pair. Each
  collector is on MQTT 3.1.1 with its own client id and a plain persistent subscription
  (``clean_session=False``), so each receives and stores the whole stream. A reading is
  written twice, to the same InfluxDB point (measurement, tags and the device's ``ts``), so
  it is still stored once. Mosquitto persists plain subscriptions over a restart, so nothing
  may be lost at all: the run fails on any acknowledged reading missing, and on a collector
  that did not receive (almost) the whole stream (counted over its lives).
- ``"shared"``: both collectors in one MQTT 5 shared group, each taking a round-robin share.
  Mosquitto 2.0.11 does not persist shared subscriptions, so the broker restart drops the
  readings published until the members subscribe again (see below); the run counts that
  window on its own and fails on a loss at any other time.

What it counts, and how:

- **Acknowledged readings lost**: (device, seq) pairs the broker acknowledged (PUBACK) to the
  publisher that are not in InfluxDB; **stored twice**: points beyond one per (device, seq)
  (:func:`testkit.chaos.scenario.check_stored`). The lost are also split by when they were
  published. In the shared mode, Mosquitto 2.0.11 restores a persistent session over a
  restart but not its shared subscriptions, so from the restart until both collectors
  subscribed again (they now do after every connect, ``collector/source.py``) the group has
  no subscription and the broker acknowledges and drops the stream. That window (about a
  second) is counted on its own; a reading lost at any other time fails the run. Before
  the collectors subscribed again after every connect, the window never closed: they sat
  connected, "session kept", and every later reading was dropped (this run found it). In
  the mirrored mode the same window is printed and must hold no loss either.
- **Pages lost**: of the four expected pages (firing and resolved of SitePowerOutage of the
  incident site and of MainsPowerLost of the lone UPS), those the receiver behind
  Alertmanager never got.
- **Pages duplicated**: Alertmanager notifies a group (``site``, ``alertname``) when it
  first fires (after ``group_wait``), again at a ``group_interval`` tick only if its alerts
  or their states changed, and otherwise only after ``repeat_interval``. The run keeps
  ``repeat_interval`` at 1 h (:func:`testkit.alertmanager.fast_config`), longer than
  the run, so every notification whose group, status and alert states (fingerprint,
  firing/resolved) equal an earlier notification's is a duplicate: a page the on-call gets
  twice. This counts a cluster that fails to deduplicate (a node paging what its peer
  already paged) as well as a flap (firing, resolved, firing again: the same firing state
  twice, though nothing changed at the site). The Watchdog's own route repeats every
  ``group_interval`` by design and is not counted. Nor are Alertmanager's own conflicting
  notifications (:func:`testkit.alertmanager.conflicting`): the restarted node rejoins as
  the follower, its flushes held by its peer wait (``peer-timeout`` = ``group_interval`` =
  2 s here) and out of step with the leader's, so one that began before the resolution may
  go out after the leader's resolved page, with the firing state, and the leader then sends
  the resolution again (prometheus/alertmanager#2447: a cluster promises the final state, not
  one notification per state). What a Kordon engine could cause, re-opening an alert its peer
  had resolved, is checked at its source: no node's log may show an alert pushed active
  after it was pushed resolved (:meth:`testkit.alertmanager.AlertmanagerNode.reopened`).
- Also reported, and part of the verdict: pages of any other alert (unexpected), the
  collectors' spools and the engines' outboxes drained, and no process of the run left
  behind (as in :mod:`testkit.chaos.scenario`).

The Alertmanager node is killed only after its peer merged the notification-log entries of
the pages it sent (its log says "gossiping new entry"). Killed before that, within the gossip
interval of notifying, the peer pages the same group again: Alertmanager's HA is
at-least-once by design (docs/reliability.md), not a fault of this run to count.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from testkit import InfluxServer, KordonProcess, MosquittoServer, free_port, wait_until
from testkit.alertmanager import (
    AlertmanagerCluster,
    conflicting,
    engine_notify,
    fast_config,
    group_states,
)
from testkit.alerts import alerts_process
from testkit.chaos.paired import Member
from testkit.chaos.report import COLLECTOR_MODES, CollectorMode, Report
from testkit.chaos.scenario import (
    LONE_UPS,
    RULES,
    Incident,
    check_stored,
    left_behind,
    outbox_pending,
    pause,
    spool_backlog,
)
from testkit.collector import collector_process
from testkit.mqtt import StreamPublisher, clear_session
from testkit.receivers import WebhookReceiver


@dataclass
class AllInOneDurations:
    """Seconds. CI keeps them short; ``bench/chaos.py --all-in-one`` stretches them."""

    warmup: float = 3.0
    collector_down: float = 1.0
    influx_down: float = 12.0  # from the stop, which comes before the incident
    engine_down: float = 1.0
    alertmanager_down: float = 2.0
    tail: float = 3.0  # after the resolved pages: time for a late duplicate to show


@dataclass(frozen=True)
class Page:
    """An alert the receiver must be paged for (firing, then resolved)."""

    alertname: str
    site: str
    device: str | None = None

    def matches(self, alert: dict[str, Any]) -> bool:
        labels = alert["labels"]
        return (
            labels.get("alertname") == self.alertname
            and labels.get("site") == self.site
            and (self.device is None or labels.get("device") == self.device)
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.alertname, self.site, self.device) if p)


def run_all_in_one(
    tmp_path: Path,
    broker: MosquittoServer,
    influx: InfluxServer,
    durations: AllInOneDurations,
    devices: int = 300,
    log: Callable[[str], None] = print,
    collectors: CollectorMode = "mirrored",
) -> Report:
    if collectors not in COLLECTOR_MODES:
        raise ValueError(f"collectors: {collectors!r}, not one of {sorted(COLLECTOR_MODES)}")
    report = Report("all-in-one chaos run", collectors=collectors, unexpected_pages=[], log=log)
    event = report.event
    mirrored = collectors == "mirrored"
    tmp_path.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    site, incident_site, lone_site = f"all-{tag}", f"inc-{tag}", f"one-{tag}"
    database = f"all_{tag}"
    expected = [Page("SitePowerOutage", incident_site), Page("MainsPowerLost", lone_site, LONE_UPS)]

    hook = WebhookReceiver().start()
    cluster = AlertmanagerCluster(
        tmp_path / "alertmanager", fast_config(hook.url("/hook"), hook.url("/watchdog")), size=2
    )
    members: list[Member] = []
    for name in ("a", "b"):
        port, client_id = free_port(), f"{site}-collector-{name}"
        process = collector_process(
            tmp_path,
            broker,
            influx,
            database,
            client_id=client_id,  # its own in both modes: its own session and spool
            # Mirrored: plain persistent subscriptions (clean_session=False), which Mosquitto
            # keeps over a restart; shared: a group of its own, so no other run's member
            # takes a share.
            protocol="3.1.1" if mirrored else "5",
            shared_group=site,
            extra_config=f'  metrics_addr: "127.0.0.1:{port}"\n',
        )
        members.append(Member(process, port, client_id))
    engines: list[KordonProcess] = []
    engine_dirs = [tmp_path / f"engine-{name}" for name in ("a", "b")]
    for name, folder in zip(("a", "b"), engine_dirs, strict=True):
        folder.mkdir(exist_ok=True)
        engines.append(
            alerts_process(
                folder,
                broker,
                engine_notify(cluster.urls),
                influx=influx,
                database=database,
                rules=RULES,
                name=f"{site}-engine-{name}",
            )
        )
    stream: StreamPublisher | None = None
    incident: Incident | None = None

    def paged(status: str) -> bool:
        """Whether every expected page reached the receiver in ``status``."""
        alerts = [alert for body in hook.bodies("/hook") for alert in body["alerts"]]
        return all(
            any(page.matches(alert) and alert["status"] == status for alert in alerts)
            for page in expected
        )

    try:
        cluster.start()
        _start_all([member.process for member in members], "collector ready")
        _start_all(engines, "alerts ready")
        start_ts = int(time.time())
        stream = StreamPublisher(
            broker.host, broker.port, site, devices=devices, rate=devices, start_ts=start_ts
        ).start()
        incident = Incident(broker, incident_site, lone_site).start()
        wait_until(lambda: all(m.received() > 0 for m in members), 30,
                   what="both collectors fed")
        wait_until(lambda: hook.bodies("/watchdog"), 30, what="the Watchdog via Alertmanager")
        pair = "mirrored (MQTT 3.1.1)" if mirrored else "in one shared group (MQTT 5)"
        event(f"{devices} devices at 1 Hz, a 3-UPS site and a lone UPS; 2 collectors {pair}, "
              "2 engines, 2 Alertmanager nodes; Watchdog through Alertmanager")
        pause(durations.warmup)

        collector = members[0]
        # Its counter starts again at 0 in the next life: keep what this one received.
        first_life = int(collector.received())
        collector.kill()
        event("collector a SIGKILLed")
        pause(durations.collector_down)
        collector.start()
        event("collector a restarted")

        influx.stop()
        influx_stopped = time.monotonic()
        event("InfluxDB stopped")
        incident.on_battery()
        event("incident: the 3-UPS site and the lone UPS on battery")
        wait_until(lambda: paged("firing"), 60, what="the incident's pages")
        # The node that sent them is the one whose peer merged their notification-log
        # entries; kill it only once the peer has them (see the module docstring).
        wait_until(
            lambda: all(any(n.merged(p.alertname) for n in cluster.nodes) for p in expected),
            15, what="the pages in the other node's notification log",
        )
        sender = next(
            (i for i, n in enumerate(cluster.nodes) if not n.merged("SitePowerOutage")), 0
        )
        event(f"firing pages delivered by Alertmanager node {sender}, merged by its peer")

        engines[0].stop(signal.SIGKILL)
        event("engine a SIGKILLed")
        pause(durations.engine_down)
        engines[0].start("alerts ready")
        event("engine a restarted")

        node = cluster.nodes[sender]
        node.kill()
        event(f"Alertmanager node {sender} SIGKILLed")
        pause(durations.alertmanager_down)
        node.start()
        cluster.wait_formed()
        event(f"Alertmanager node {sender} restarted; the cluster formed again")

        offsets = [member.process.log_path.stat().st_size for member in members]
        broker_stopped = time.time()
        broker.restart()
        event("Mosquitto restarted")
        resubscribed = wait_until(
            lambda: _subscribed_again(members, offsets), 30,
            what="both collectors ready again",
        )
        report.restart_window = resubscribed - broker_stopped
        if mirrored:
            kept = sum(
                "session kept" in member.process.log_since(offset)
                for member, offset in zip(members, offsets, strict=True)
            )
            again = f"reconnected, sessions kept by {kept} of 2,"
        else:
            again = "subscribed again"
        event(f"both collectors {again} {report.restart_window:.1f} s after the broker "
              "stopped")
        pause(durations.influx_down - (time.monotonic() - influx_stopped))
        influx.start()
        event(f"InfluxDB back after {time.monotonic() - influx_stopped:.0f} s")

        incident.mains_back()
        event("incident over: mains back")
        wait_until(lambda: paged("resolved"), 60, what="the resolved pages")
        event("resolved pages delivered")
        pause(durations.tail)

        stream.stop(settle=60)
        acked = stream.acked
        stream = None
        event("stream stopped")
        # A reading's ts is start_ts + seq (1 Hz rounds, whole seconds): one second of slack
        # each side covers the rounding and readings paho held while the broker was away.
        first, last = math.floor(broker_stopped) - 1, math.ceil(resubscribed) + 1

        def in_window(reading: tuple[str, int]) -> bool:
            return first <= start_ts + reading[1] <= last

        # Wait for what must arrive (a shared group's window readings may never; a mirrored
        # pair must store every one), then for the spools to drain, and count.
        check_stored(influx, database, site, acked, interval=0.5,
                     wait_for=set(acked) if mirrored
                     else {reading for reading in acked if not in_window(reading)})
        backlogs = [spool_backlog(member.port) for member in members]
        report.spool_backlog = -1.0 if -1.0 in backlogs else sum(backlogs)
        found = check_stored(influx, database, site, acked, wait_for=set())
        report.count_stored(found)
        report.missing_in_restart_window = sum(1 for reading in found.lost if in_window(reading))
        event("every acknowledged reading checked in InfluxDB")
        report.shares = [int(member.received()) for member in members]
        report.received = [first_life + report.shares[0], *report.shares[1:]]
        outboxes = [folder / "data" / "alerts.sqlite" for folder in engine_dirs]
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: sum(outbox_pending(db) for db in outboxes) == 0, 30,
                       what="the engines' outboxes to drain")
        report.outbox_pending = sum(outbox_pending(db) for db in outboxes)
    finally:
        if stream is not None:
            stream.stop(settle=5)
        if incident is not None:
            incident.stop()
        for process in [member.process for member in members] + engines:
            code = process.stop()
            if code not in (0, None):
                report.leftover.append(f"{process.args} exited {code}")
        cluster.stop()
        report.reopened = sorted({a for node in cluster.nodes for a in node.reopened()})
        hook.stop()
        # Counted once every sender is gone, so a late duplicate is counted too.
        _check_pages(hook, expected, report)
        for member in members:
            # Leave no session behind to take a share of a later run on this broker.
            with contextlib.suppress(TimeoutError, OSError):
                clear_session(broker.host, broker.port, member.client_id)
        report.leftover += left_behind(tmp_path, broker, influx)
        report.finish()
    return report


def _subscribed_again(members: list[Member], offsets: list[int]) -> float | None:
    """When the last of ``members`` logged "collector ready" (after its SUBACK, or on a
    connect whose session an MQTT 3.1.1 broker kept) past its log ``offsets``, as wall-clock
    seconds; None while one has not."""
    times = []
    for member, offset in zip(members, offsets, strict=True):
        lines = member.process.log_since(offset).splitlines()
        ready = [line for line in lines if line.endswith("collector ready")]
        if not ready:
            return None
        # "2026-12-02 09:36:32,087 INFO collector.source: collector ready" (local time)
        times.append(datetime.strptime(ready[0][:23], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return max(times)


def _start_all(processes: Iterable[KordonProcess], ready_line: str) -> None:
    """Start processes side by side (each takes a second or two to import and connect)."""
    processes = list(processes)
    with ThreadPoolExecutor(len(processes)) as pool:
        for future in [pool.submit(p.start, ready_line) for p in processes]:
            future.result()


def _check_pages(hook: WebhookReceiver, expected: list[Page], report: Report) -> None:
    requests = hook.received("/hook")
    bodies = [r.body for r in requests]
    seen: set[tuple[Page, str]] = set()
    unexpected: set[str] = set()
    for request in requests:
        states = []
        for alert in request.body["alerts"]:
            page = next((p for p in expected if p.matches(alert)), None)
            labels = alert["labels"]
            name = str(page) if page else "/".join(
                labels[k] for k in ("alertname", "site", "device") if labels.get(k)
            )
            states.append(f"{name} {alert['status']}")
            if page is None:
                unexpected.add(f"{name} {alert['status']}")
            else:
                seen.add((page, alert["status"]))
        report.notifications.append(
            f"t={request.at - report.started:5.1f}s {request.body['status']}: {', '.join(states)}"
        )
    report.expected_pages = [f"{p} {s}" for p in expected for s in ("firing", "resolved")]
    report.pages_lost = [
        f"{p} {s}" for p in expected for s in ("firing", "resolved") if (p, s) not in seen
    ]
    labels_of = {body["groupKey"]: body["groupLabels"] for body in bodies}
    conflicts = conflicting(bodies)
    report.conflicting = len(conflicts)
    bodies = [body for index, body in enumerate(bodies) if index not in conflicts]
    for (group, status, alerts), count in group_states(bodies).items():
        if count > 1:
            report.pages_duplicated += count - 1
            shown = "/".join(labels_of[group].get(k, "") for k in ("alertname", "site"))
            report.repeated.append(f"{shown} {status} ({len(alerts)} alerts) x{count}")
    report.unexpected_pages = sorted(unexpected)
