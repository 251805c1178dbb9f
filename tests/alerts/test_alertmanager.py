"""Kordon engines pushing to a real Alertmanager cluster (Debian's prometheus-alertmanager).

Two ``kordon run --roles alerts`` processes watch the same site through a blackout and push
to two clustered Alertmanager nodes whose webhook receivers point at a real HTTP server. The
example configuration ``deploy/alertmanager.yml`` is what runs (its grouping and inhibition),
with short timings. Mid-incident one engine and one Alertmanager node are SIGKILLed; every
group state is still notified once, new alerts still page and every group resolves.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.config import MAINTENANCE_ALERTS, URGENT_ALERTS
from alerts.inhibit import BUILTIN
from alerts.notify.alertmanager import AlertmanagerConfig, postable_alerts
from testkit import KordonProcess, MakeProcess, MosquittoServer, wait_until
from testkit.alertmanager import (
    AMTOOL,
    EXAMPLE,
    AlertmanagerCluster,
    engine_notify,
    fast_config,
    group_states,
)
from testkit.alerts import UPS_ON_MAINS, MakeDevices, ups_on_battery
from testkit.receivers import WebhookReceiver

UPS = ("ups-1", "ups-2", "ups-3")
# On its own feed, it goes on battery only after the kills: a page that starts then. Its charge
# is low but steady, so no depletion page exists to fold its BatteryLow into.
LATE_UPS = "ups-late"
TEAM = "чергові зміни — Солотвино"  # UTF-8 in a label and (below) in annotations


@pytest.fixture
def cluster(tmp_path: Path, hook: WebhookReceiver) -> Iterator[AlertmanagerCluster]:
    config = fast_config(hook.url("/hook"), hook.url("/watchdog"))
    nodes = AlertmanagerCluster(tmp_path / "alertmanager", config, size=2).start()
    yield nodes
    nodes.stop()


def pushed_texts(workdir: Path) -> set[str]:
    """Every (labels, annotations) an engine pushed, from its outbox (JSON, canonical)."""
    db = sqlite3.connect(workdir / "data" / "alerts.sqlite")
    try:
        rows = db.execute(
            "SELECT payload FROM outbox WHERE receiver = 'am/alertmanager'"
        ).fetchall()
    finally:
        db.close()
    return {
        json.dumps([alert["labels"], alert["annotations"]], sort_keys=True)
        for (payload,) in rows
        for alert in json.loads(payload)["alerts"]
    }


def names(bodies: list[dict[str, Any]], status: str) -> set[str]:
    return {
        b["groupLabels"]["alertname"] for b in bodies if b["status"] == status
    }


def test_example_configuration_is_valid_and_mirrors_kordons_inhibition() -> None:
    done = subprocess.run(
        [AMTOOL, "check-config", str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    import yaml

    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert config["route"]["group_by"] == ["site", "alertname"]
    shipped = [
        (rule["source_matchers"], rule["target_matchers"], rule["equal"])
        for rule in config["inhibit_rules"]
    ]
    assert shipped == [(r.source_matchers, r.target_matchers, r.equal) for r in BUILTIN]


def test_example_configuration_groups_maintenance_apart_as_kordon_does() -> None:
    """Kordon's maintenance class (issue 28) has its own route in the example, grouped
    apart; the power path stays on the root route (amtool's own routing says so)."""
    import yaml

    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    [apart] = [r for r in config["route"]["routes"] if "ReplaceBattery" in str(r["matchers"])]
    assert apart["matchers"] == [f'alertname=~"{"|".join(MAINTENANCE_ALERTS)}"']
    assert apart["group_by"] == ["site", "alertname"] and apart["receiver"] == "oncall"

    def path(name: str) -> str:
        done = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={EXAMPLE}", "--tree",
             f"alertname={name}", "site=chop"],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    for name in MAINTENANCE_ALERTS:
        assert "ReplaceBattery|ScheduledOutageAtRisk" in path(name), name
    for name in URGENT_ALERTS:
        assert "alertname=~" not in path(name), name


def test_texts_and_labels_arrive_intact(cluster: AlertmanagerCluster,
                                        hook: WebhookReceiver) -> None:
    """The notifier against a real node: UTF-8 labels and annotations, times as pushed."""
    notifier = AlertmanagerConfig(urls=cluster.urls).notifier()
    now = time.time()
    labels = {"alertname": "SitePowerOutage", "site": "solotvyno", "severity": "critical",
              "team": TEAM}
    annotations = {"summary": "Солотвино lost grid power — 3 UPS on battery",
                   "description": "Перевірте генератор; \"quotes\", back\\slash, 100 %"}
    alert = {"status": "firing", "labels": labels, "annotations": annotations,
             "startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://kordon.test/", "fingerprint": "f"}
    try:
        notifier.send({"alerts": [alert], "pushedAt": now, "validUntil": now + 60}, "k")
        body = wait_until(lambda: hook.bodies("/hook"), timeout=30, what="the page")[0]
    finally:
        notifier.close()
    got = body["alerts"][0]
    assert got["labels"] == labels and got["annotations"] == annotations
    assert got["startsAt"].startswith("2026-01-01T00:00:00")
    assert got["generatorURL"] == "http://kordon.test/"
    stored = cluster.nodes[1].alerts()[0]
    assert stored["labels"] == labels and stored["annotations"] == annotations


def test_postable_alerts_follow_prometheus() -> None:
    """Firing: endsAt = validUntil; resolved: its end; never endsAt before startsAt, never a
    start or end ahead of the wall clock (an engine on a scenario clock may be ahead)."""
    firing = {"status": "firing", "labels": {"alertname": "A", "device": ""},
              "annotations": {}, "startsAt": "2030-01-01T00:00:00.000Z",
              "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "a"}
    resolved = {**firing, "status": "resolved", "startsAt": "2026-01-01T00:00:00.000Z",
                "endsAt": "2026-01-01T00:10:00.000Z"}
    pushed = 1_800_000_000.0  # 2027-01-15
    out = postable_alerts(
        {"alerts": [firing, resolved], "pushedAt": pushed, "validUntil": pushed + 240}, pushed
    )
    assert out[0]["labels"] == {"alertname": "A"}  # empty labels dropped, as Alertmanager does
    assert out[0]["startsAt"] == "2027-01-15T08:00:00.000Z"  # clamped to the push
    assert out[0]["endsAt"] == "2027-01-15T08:04:00.000Z"
    assert "generatorURL" not in out[0]
    assert (out[1]["startsAt"], out[1]["endsAt"]) == (
        "2026-01-01T00:00:00.000Z", "2026-01-01T00:10:00.000Z")


@pytest.mark.parametrize(("engine_killed", "node_killed"), [(0, 0), (1, 1)])
def test_two_engines_two_nodes_page_once_and_survive_sigkill(
    tmp_path: Path,
    site: str,
    cluster: AlertmanagerCluster,
    hook: WebhookReceiver,
    make_alerts: MakeProcess,
    make_devices: MakeDevices,
    own_mosquitto: MosquittoServer,
    engine_killed: int,
    node_killed: int,
) -> None:
    # A broker of its own: on the worker's shared one the engines pushed every other test's
    # alerts into this cluster too, dozens of groups whose notification-log gossip on a busy
    # host delayed the merge this test waits for beyond 30 s (two clean-clone runs).
    started = time.monotonic()

    def ours() -> list[dict[str, Any]]:
        """Pages of this test's site (the session's broker may hold other tests' devices)."""
        return [b for b in hook.bodies("/hook") if b["groupLabels"].get("site") == site]

    engines: list[KordonProcess] = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        engine = make_alerts(engine_notify(cluster.urls, watchdog_labels={"team": TEAM}),
                             mosquitto=own_mosquitto, workdir=tmp_path / name,
                             name=f"alerts-{name}-{site}")
        engine.start("alerts ready")
        engines.append(engine)
    devices = make_devices(own_mosquitto)
    for ups in (*UPS, LATE_UPS):
        devices.add("ups", ups, **UPS_ON_MAINS)
    devices.start()
    # The Watchdog (always firing, both engines, deduplicated) reaches its own route.
    wait_until(lambda: hook.bodies("/watchdog"), timeout=30, what="the Watchdog via Alertmanager")

    # Blackout: every UPS on battery, draining 1 % a second.
    for ups in UPS:
        devices.set(ups, **ups_on_battery(32.0, drain=0.25))
    wait_until(lambda: "SitePowerOutage" in names(ours(), "firing"),
               timeout=30, what="the outage page")
    first_page = time.monotonic()
    # Alertmanager deduplicates through its gossiped notification log: wait until the node
    # that did not send the page has merged its entry (it logs "gossiping new entry"). A
    # node killed before that (within ~a gossip interval of notifying) lets its peer page the
    # same group again: Alertmanager's HA is at-least-once (docs/reliability.md).
    # (30 s: a gossip round is 200 ms, but parallel test workers can starve the nodes.)
    wait_until(lambda: any(node.merged("SitePowerOutage") for node in cluster.nodes),
               timeout=30, what="the page in both nodes' notification logs")

    # Mid-incident: SIGKILL one engine and one Alertmanager node.
    engines[engine_killed].kill()
    cluster.nodes[node_killed].kill()
    survivor = engines[1 - engine_killed]

    # Notifications continue: BatteryLow (charge below 20 %) fires after the kills. (The
    # draining units' BatteryLow is folded into their depletion page, as in Kordon.)
    devices.set(LATE_UPS, **ups_on_battery(15.0, drain=0.0))
    wait_until(lambda: "BatteryLow" in names(ours(), "firing"),
               timeout=60, what="BatteryLow paged after the kills")
    # Mains back: every group that paged resolves.
    for ups in (*UPS, LATE_UPS):
        devices.set(ups, **UPS_ON_MAINS, _drain=0.0)

    def all_resolved() -> bool:
        last: dict[str, str] = {}
        for body in ours():
            last[body["groupKey"]] = body["status"]
        return bool(last) and all(status == "resolved" for status in last.values())

    try:
        wait_until(all_resolved, timeout=60, what="every paged group to resolve")
    except TimeoutError:
        for body in ours():
            print(body["groupKey"], body["status"],
                  [(a["labels"].get("device"), a["status"]) for a in body["alerts"]])
        print(survivor.tail_log(30))
        print(cluster.nodes[1 - node_killed].tail_log(60))
        raise
    resolved_at = time.monotonic()
    for ups in UPS:  # no retained "online" of these devices for the next test's engines
        devices.status("ups", ups, "")
    devices.stop()

    bodies = ours()
    # Exactly once: no group state was notified twice (two engines, two nodes, two kills).
    repeated = {state: n for state, n in group_states(bodies).items() if n > 1}
    assert not repeated, f"notified more than once: {repeated}"
    paged = names(bodies, "firing")
    assert {"SitePowerOutage", "BatteryDepletionImminent", "BatteryLow"} <= paged, paged
    assert "MainsPowerLost" not in paged  # inhibited by SitePowerOutage, as in Kordon
    # Texts and labels intact: each paged alert is exactly what an engine pushed.
    pushed = pushed_texts(tmp_path / "a") | pushed_texts(tmp_path / "b")
    for body in bodies:
        for alert in body["alerts"]:
            text = json.dumps([alert["labels"], alert["annotations"]], sort_keys=True)
            assert text in pushed, f"changed on the way: {alert}"
            assert alert["generatorURL"] == "http://kordon.test/"
    watchdog = hook.bodies("/watchdog")[-1]["alerts"][0]["labels"]
    assert watchdog == {"alertname": "Watchdog", "severity": "none", "team": TEAM}
    survivor.stop(signal.SIGTERM)
    print(f"\nfirst page {first_page - started:.1f} s after start, all resolved "
          f"{resolved_at - first_page:.1f} s after it; {len(bodies)} notifications")
