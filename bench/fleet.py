"""Fleet benchmark: the whole NUT Devices Dumps Library as a live fleet, into a real collector.

Every dump of ``shared/data/nut-ddl`` (677 real units) is one UPS: ``dummy-ups`` serves it
behind a real ``upsd``, ``kordon nut-bridge`` polls it every second and publishes it to a real
Mosquitto, and a real collector (``kordon run --roles collector``) stores it in a real
InfluxDB. Sites are how a fleet is deployed: one upsd and one bridge per site, ``--per-site``
UPSes each (NUT servers rarely watch more than a few dozen; the default keeps a poll of a
site well inside the second).

After a warm-up, the collector's own counters are read over ``--seconds``:

- readings/s accepted (validated and spooled) and lines/s written to InfluxDB, against the
  fleet's nominal rate (one reading per UPS per second, more for ePDUs split over 128 metrics);
- dead letters: the collector's count by reason, what reached ``kordon/v1/deadletter``, and
  the lines InfluxDB refused for good (0: a value whose type differs from its field's is
  stored under the derived name, counted as "values retyped");
- the collector's memory (VmRSS now, VmHWM peak) and the bridges' combined RSS.

Usage: ``.venv/bin/python -m bench.fleet [--seconds 60] [--per-site 50] [--warmup 20]``

Measured here (2 cores shared with the 677 ``dummy-ups``, 14 upsd and 14 bridges, 30 s after
10 s of warm-up). Before issue 12 PART B: 49 dead letters in the window (42 on
``ups.efficiency``, 7 on ``input.source``, all InfluxDB's "field type conflict"), only 17
lines/s written while the writer split refused batches, the spool backlog growing (27.6 MB),
collector RSS 77 MB. After: 0 dead letters, 0 lines refused, 0 write errors, about 450 lines/s
written for 420 readings/s accepted (the bridges, upsd and 677 drivers on the same 2 cores
hold it under the nominal 677/s), spool backlog 0.5 MB (one flush), collector RSS 60 MB.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.common import peak_rss_mb, scrape, start_servers
from testkit import KordonProcess, free_port, wait_until
from testkit.bridges import BridgeProcess, NutServer
from testkit.collector import kordon_env
from testkit.mqtt import Recorder
from testkit.nut_library import MISSING, batches, dumps, library_root


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def labelled(port: int, family: str) -> Counter[str]:
    """``family{...} value`` samples of the collector's /metrics, by their label text."""
    import httpx

    out: Counter[str] = Counter()
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith(family + "{"):
            labels, value = line.rsplit(" ", 1)
            out[labels[len(family):]] += int(float(value))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=20.0, help="after every UPS is online")
    parser.add_argument("--per-site", type=int, default=50, help="UPSes per upsd and bridge")
    parser.add_argument("--limit", type=int, default=0, help="only the first N dumps (0: all)")
    args = parser.parse_args()

    root = library_root()
    if root is None:
        print(f"skipped: {MISSING}")
        return 2
    items = dumps(root)
    if args.limit:
        items = items[: args.limit]
    base = Path(tempfile.mkdtemp(prefix="kordon-fleet-"))
    broker, influx, _ = start_servers(base)
    database = f"fleet_{uuid.uuid4().hex[:6]}"
    client_id = f"fleet-collector-{uuid.uuid4().hex[:6]}"
    metrics_port = free_port()
    config = base / "collector.yaml"
    config.write_text(
        f'mqtt:\n  protocol: "3.1.1"\n  client_id: {client_id}\n  shared_group: {client_id}\n'
        f'collector:\n  stats_interval: 600s\n  metrics_addr: "127.0.0.1:{metrics_port}"\n'
    )
    collector = KordonProcess(["run", "--roles", "collector"],
                              kordon_env(config, broker, influx, database, base / "data"),
                              base / "collector")
    servers: list[NutServer] = []
    bridges: list[BridgeProcess] = []
    deadletters = Recorder(broker.host, broker.port, "kordon/v1/deadletter")
    print(f"cpus={os.cpu_count()} ups={len(items)} per_site={args.per_site} interval=1s",
          flush=True)
    try:
        collector.start(ready_line="collector ready")
        assert collector.process is not None
        pid = collector.process.pid
        started = time.monotonic()
        for number, site_items in enumerate(batches(items, args.per_site)):
            nut = NutServer.from_dumps(base / f"nut{number}", site_items)
            servers.append(nut.start())
            bridge = BridgeProcess(
                ["nut-bridge", "--nut", f"127.0.0.1:{nut.port}", "--site", f"site{number:02d}",
                 "--interval", "1s", "--timeout", "30s"],
                broker.url, base / f"bridge{number}",
            )
            bridge.start()
            bridges.append(bridge)
        print(f"{len(servers)} sites (upsd + bridge) started in "
              f"{time.monotonic() - started:.0f} s", flush=True)

        def online() -> int:
            return sum(b.log_text().count(" online") for b in bridges)

        wait_until(lambda: online() >= len(items), 300, interval=1,
                   what=f"all {len(items)} UPSes online")
        print(f"all {len(items)} UPSes online after {time.monotonic() - started:.0f} s; "
              f"warm-up {args.warmup:.0f} s", flush=True)
        time.sleep(args.warmup)  # a measured window, not a wait for an event

        before = scrape(metrics_port)
        t0 = time.monotonic()
        time.sleep(args.seconds)  # the measured window
        after = scrape(metrics_port)
        elapsed = time.monotonic() - t0

        def rate(name: str) -> float:
            return (after.get(name, 0) - before.get(name, 0)) / elapsed

        reasons = labelled(metrics_port, "kordon_collector_deadlettered_total")
        bridge_rss = sum(rss_mb(b.process.pid) for b in bridges if b.process is not None)
        print(f"messages/s received      {rate('kordon_collector_messages_received_total'):9.1f}")
        print(f"readings/s accepted      {rate('kordon_collector_readings_accepted_total'):9.1f}"
              f"   (nominal {len(items)}/s: one per UPS per second)")
        print(f"lines/s written          {rate('kordon_collector_lines_written_total'):9.1f}")
        refused_lines = after.get("kordon_collector_lines_rejected_total", 0)
        print(f"lines refused for good   {refused_lines:9.0f}   (by InfluxDB, since start)")
        print(f"dead letters (collector) {sum(reasons.values()):9d}   {dict(reasons)}")
        print(f"dead letters (topic)     {len(deadletters.messages):9d}")
        retyped = labelled(metrics_port, "kordon_collector_values_retyped_total")
        print(f"values retyped (total)   {sum(retyped.values()):9d}   {dict(retyped)}")
        conflicts = after.get("kordon_collector_type_conflicts_total", 0)
        print(f"type conflicts rewritten {conflicts:9.0f}   (writes refused for a type, retried)")
        write_errors = after.get("kordon_collector_write_errors_total", 0)
        print(f"write errors             {write_errors:9.0f}")
        backlog = after.get("kordon_collector_spool_backlog_bytes", 0) / 1e6
        print(f"spool backlog            {backlog:9.1f} MB  (accepted, not yet in InfluxDB)")
        print(f"collector RSS            {rss_mb(pid):9.1f} MB  (peak {peak_rss_mb(pid):.1f} MB)")
        print(f"bridges RSS (all)        {bridge_rss:9.1f} MB  ({len(bridges)} processes)")
        refused = Counter()
        for message in list(deadletters.messages):
            text = message.payload.decode(errors="replace")
            refused[text.split("field type conflict:", 1)[-1][:80] if "conflict" in text
                    else text[:80]] += 1
        for reason, count in refused.most_common(8):
            print(f"  dead letter x{count}: {reason}")
    finally:
        for bridge in bridges:
            bridge.stop()
        for nut in servers:
            nut.stop()
        collector.stop()
        deadletters.close()
        broker.stop()
        influx.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
