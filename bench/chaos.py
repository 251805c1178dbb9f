"""Chaos, the long run, and the broker-queue window.

    .venv/bin/python -m bench.chaos                 # the chaos scenario, InfluxDB down 60 s
    .venv/bin/python -m bench.chaos --all-in-one    # every part killed once, paired HA setup
    .venv/bin/python -m bench.chaos --all-in-one --pair shared  # the MQTT 5 shared group
    .venv/bin/python -m bench.chaos --window        # how long may a collector stay away?

The scenario is testkit/chaos/scenario.py (the CI test runs it with a 15 s outage): 200 devices
at 1 Hz, the collector SIGKILLed, InfluxDB stopped, the webhook receiver down, the alert
engine SIGKILLed, Mosquitto restarted; then every acknowledged reading is checked in InfluxDB
exactly once, the pages and their idempotency keys, the spool and outbox, leftover processes.

``--all-in-one`` runs testkit/chaos/allinone.py (the CI test runs it with a 12 s outage): two
collectors, a mirrored pair (``--pair mirrored``, the default: MQTT 3.1.1, each its own client
id and the whole stream) or one MQTT 5 shared group (``--pair shared``, which loses the
readings of the second before its members subscribe again after the broker restart), and two
engines pushing to a 2-node Alertmanager cluster whose webhook goes to an HTTP receiver; 300
devices at 1 Hz and an incident; one collector, one engine and one Alertmanager node
SIGKILLed and restarted, Mosquitto restarted, InfluxDB down for ``--outage`` seconds; then
acknowledged readings lost and stored twice, pages lost and duplicated (as defined in that
module), spools, outboxes and leftover processes.

``--window`` SIGKILLs a collector (one alone, then one of two in an MQTT 5 shared group),
keeps a numbered stream running at ``--rate`` until ``N`` messages were published for each N
of ``--away``, restarts it and counts what InfluxDB holds of what the broker acknowledged.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from testkit import InfluxServer, MosquittoServer
from testkit.chaos.allinone import AllInOneDurations, run_all_in_one
from testkit.chaos.report import COLLECTOR_MODES
from testkit.chaos.scenario import Durations, run_chaos
from testkit.chaos.window import measure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", action="store_true", help="measure the queue window")
    parser.add_argument(
        "--all-in-one", action="store_true",
        help="two collectors, two engines, two Alertmanager nodes; kill one of each",
    )
    parser.add_argument("--devices", type=int, default=300, help="--all-in-one: devices at 1 Hz")
    parser.add_argument(
        "--pair", choices=("mirrored", "shared"), default="mirrored",
        help="--all-in-one: the collectors, a mirrored pair on MQTT 3.1.1 (each the whole "
        "stream) or one MQTT 5 shared group",
    )
    parser.add_argument("--rate", type=float, default=8000, help="stream rate, msgs/s")
    parser.add_argument(
        "--away", default="60000,70000,140000", help="messages published while away (list)"
    )
    parser.add_argument("--collectors", default="1,2", help="group sizes to measure")
    parser.add_argument("--protocol", default=None, help="5 or 3.1.1 (default: 5 for groups)")
    parser.add_argument("--outage", type=float, default=60.0, help="InfluxDB outage, s")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kordon-chaos-"))
    broker = MosquittoServer(base / "mosquitto")
    influx = InfluxServer(base / "influxdb")
    broker.start()
    influx.start()
    try:
        if args.window:
            for collectors in (int(c) for c in args.collectors.split(",")):
                for away in (int(n) for n in args.away.split(",")):
                    result = measure(
                        base,
                        broker,
                        influx,
                        collectors=collectors,
                        rate=args.rate,
                        away_messages=away,
                        protocol=args.protocol,
                    )
                    print(result.text(), flush=True)
            return 0
        if args.all_in_one:
            print(f"all in one, collectors: {COLLECTOR_MODES[args.pair]}", flush=True)
            report = run_all_in_one(
                base / "all-in-one",
                broker,
                influx,
                AllInOneDurations(
                    warmup=10,
                    collector_down=5,
                    influx_down=args.outage,
                    engine_down=5,
                    alertmanager_down=10,
                    tail=10,
                ),
                devices=args.devices,
                collectors="shared" if args.pair == "shared" else "mirrored",
            )
            print(report.text())
            return 0 if report.ok else 1
        durations = Durations(
            warmup=10,
            collector_down=5,
            influx_down=args.outage,
            receiver_down=args.outage,
            engine_down=5,
            tail=10,
        )
        report = run_chaos(base / "run", broker, influx, durations)
        print(report.text())
        return 0 if report.ok else 1
    finally:
        broker.stop()
        influx.stop()


if __name__ == "__main__":
    sys.exit(main())
