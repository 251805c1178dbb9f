"""Prometheus Alertmanager from Debian's ``prometheus-alertmanager`` as child processes.

:class:`AlertmanagerCluster` runs N nodes gossiping over loopback, with the example
configuration ``deploy/alertmanager.yml`` (its routes, grouping and inhibit rules) made fast
for tests and its webhook receivers pointed at a test's :class:`WebhookReceiver`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from testkit.servers import ServerProcess, free_port
from testkit.waiting import wait_until

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "alertmanager.yml"
# Its debug log line for every alert a push carried: alert=MainsPowerLost[4a4dadd][active]
_RECEIVED = re.compile(
    r'ts=(\S+) caller=\S+ level=debug component=dispatcher msg="Received alert" '
    r'alert=(\w+\[\w+\])\[(active|resolved)\]'
)


def fast_config(
    hook_url: str, watchdog_url: str, *, group_wait: str = "1s", group_interval: str = "2s"
) -> dict[str, Any]:
    """``deploy/alertmanager.yml`` with short timings and the receivers at ``hook_url`` and
    ``watchdog_url``; everything else (grouping, inhibition) as shipped."""
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    route = config["route"]
    route.update(group_wait=group_wait, group_interval=group_interval, repeat_interval="1h")
    for child in route["routes"]:
        child["group_interval"] = group_interval
        if "repeat_interval" in child:  # the Watchdog's route repeats as often as it groups
            child["repeat_interval"] = group_interval
    urls = {"oncall": hook_url, "deadmans-switch": watchdog_url}
    for receiver in config["receivers"]:
        for webhook in receiver["webhook_configs"]:
            webhook["url"] = urls[receiver["name"]]
    return config


def engine_notify(
    urls: list[str], *, resend_delay: str = "2s", watchdog_labels: dict[str, str] | None = None
) -> str:
    """A Kordon engine's ``notify`` section pushing every alert to the Alertmanager ``urls``
    (the ``alertmanager`` receiver kind), with its Watchdog every second."""
    labels = f", labels: {json.dumps(watchdog_labels)}" if watchdog_labels else ""
    push = f"urls: {json.dumps(urls)}, resend_delay: {resend_delay}, resolved_retention: 30s"
    return f"""notify:
  external_url: http://kordon.test/
  receivers:
    - name: am
      alertmanager: {{{push}}}
  watchdog: {{receiver: am, interval: 1s{labels}}}
"""


def group_states(bodies: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """How often each distinct notification (group, status, alerts and their states) came.

    Alertmanager notifies a group again only when its alerts or their states changed, or
    after ``repeat_interval``: within that interval a count above 1 is a duplicate page.
    """
    return Counter(
        (
            body["groupKey"],
            body["status"],
            tuple(sorted((a["fingerprint"], a["status"]) for a in body["alerts"])),
        )
        for body in bodies
    )


class AlertmanagerNode(ServerProcess):
    name = "alertmanager"

    def __init__(self, workdir: Path, config: Path, peers: list[str], *, index: int) -> None:
        self.name = f"alertmanager-{index}"
        super().__init__(workdir)
        self.config = config
        self.port = free_port()
        self.cluster_port = free_port()
        self.peers = peers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cluster_address(self) -> str:
        return f"127.0.0.1:{self.cluster_port}"

    def command(self) -> list[str]:
        return [
            ALERTMANAGER,
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--cluster.listen-address={self.cluster_address}",
            f"--cluster.advertise-address={self.cluster_address}",
            *[f"--cluster.peer={peer}" for peer in self.peers if peer != self.cluster_address],
            # A follower waits peer_timeout x its position for the leader's notification log
            # entry before it notifies itself: short, so a dead leader delays pages little.
            "--cluster.peer-timeout=2s",
            "--cluster.settle-timeout=5s",
            "--cluster.probe-interval=200ms",
            "--cluster.probe-timeout=200ms",
            "--cluster.pushpull-interval=2s",
            "--log.level=debug",
        ]

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/api/v2/status", timeout=2.0).json()

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=2.0).json()

    def merged(self, alertname: str, receiver: str = "oncall") -> bool:
        """Whether this node merged a peer's notification-log entry for the group of
        ``alertname`` sent to ``receiver`` (Alertmanager logs it at debug level): the
        peer notified, and this node knows it."""
        return any(
            "gossiping new entry" in line and alertname in line and receiver in line
            for line in self.log_path.read_text(errors="replace").splitlines()
        )


    def reopened(self, longer_than: float = 1.0) -> list[str]:
        """Alerts this node was pushed as active after it had been pushed them resolved, and
        that stayed active more than ``longer_than`` seconds (over all its lives): a sender
        that re-opened what was over. Two engines resolve the same alert milliseconds apart,
        so the later one's last push before its resolution may land after the earlier one's
        resolved push; its own resolved push follows at once, and no page sees it."""
        ended: set[str] = set()
        opened: dict[str, datetime] = {}
        found: list[str] = []
        for stamp, alert, state in _RECEIVED.findall(self.log_path.read_text(errors="replace")):
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if state == "active":
                if alert in ended:
                    opened.setdefault(alert, at)
                continue
            ended.add(alert)
            since = opened.pop(alert, None)
            if since is not None and (at - since).total_seconds() > longer_than:
                found.append(alert)
        found += [alert for alert in opened if alert not in found]  # never resolved again
        return sorted(set(found))


def conflicting(bodies: list[dict[str, Any]]) -> list[int]:
    """Indexes of the notifications that are Alertmanager's own conflicting ones.

    A cluster guarantees the receiver the final state of a group, not a single notification
    per state (prometheus/alertmanager#2447, #4008): a follower's flush, held by its peer
    wait, may go out after the leader already sent a newer state, with the older one, and the
    leader then sends its state again. Such a notification repeats an earlier state of its
    group right after another node sent a different one; a sender that re-opened an alert
    shows in :meth:`AlertmanagerNode.reopened` instead.
    """
    last: dict[str, tuple[Any, str]] = {}  # group -> (state, node) of its latest notification
    seen: set[tuple[str, Any]] = set()
    found = []
    for index, body in enumerate(bodies):
        group = body["groupKey"]
        state = (body["status"],
                 tuple(sorted((a["fingerprint"], a["status"]) for a in body["alerts"])))
        node = body.get("externalURL", "")
        before = last.get(group)
        if (group, state) in seen and before is not None and before[0] != state \
                and before[1] != node:
            found.append(index)
        seen.add((group, state))
        last[group] = (state, node)
    return found


class AlertmanagerCluster:
    def __init__(self, workdir: Path, config: dict[str, Any], size: int = 2) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.nodes: list[AlertmanagerNode] = []
        peers: list[str] = []
        for index in range(size):
            node = AlertmanagerNode(workdir / f"node-{index}", self.config_path, peers, index=index)
            self.nodes.append(node)
        peers.extend(node.cluster_address for node in self.nodes)

    def start(self) -> AlertmanagerCluster:
        for node in self.nodes:
            node.start()
        self.wait_formed()
        return self

    def formed(self) -> bool:
        """Every node up, sees every node as a peer and has settled its gossip."""
        return all(
            len(n.status()["cluster"]["peers"]) == len(self.nodes)
            and n.status()["cluster"]["status"] == "ready"
            for n in self.nodes
        )

    def wait_formed(self, timeout: float = 30) -> None:
        wait_until(self.formed, timeout=timeout,
                   what="the Alertmanager nodes to form one cluster")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]
