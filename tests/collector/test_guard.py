"""The cardinality guard and the per-message input limits: each enforced, counted per reason.

The pure part runs :class:`collector.ingest.Ingest` directly (no I/O there); the end-to-end
test runs a real collector against real Mosquitto and InfluxDB and reads its /metrics.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from collector.guard import REASON_RATE, REASON_TOTAL, CardinalityGuard
from collector.ingest import Ingest
from collector.stats import CollectorStats
from kordon.model.payload import DecodeLimits
from kordon.model.topics import DEADLETTER_TOPIC
from testkit import InfluxServer, MakeProcess, MosquittoServer, free_port, wait_until
from testkit.mqtt import Publisher, Recorder

NOW = 1_790_000_000.0
LIMITS = DecodeLimits(max_payload_bytes=2048, max_batch=5, max_metrics=4, max_string=32)


def _topic(device: str, site: str = "chop", kind: str = "ups") -> str:
    return f"kordon/v1/{site}/{kind}/{device}/telemetry"


def _reading(**metrics: object) -> dict[str, object]:
    return {"ts": NOW - 10, "seq": 1, "metrics": metrics or {"battery.charge": 50.0}}


def _ingest(guard: CardinalityGuard | None = None) -> tuple[Ingest, CollectorStats]:
    stats = CollectorStats()
    return Ingest(stats, LIMITS, guard=guard), stats


@pytest.mark.parametrize(
    ("reason", "payload"),
    [
        ("payload_size", orjson.dumps(_reading(**{"fw.note": "x" * 3000}))),
        ("batch_length", orjson.dumps([_reading() for _ in range(6)])),
        ("metric_count", orjson.dumps(_reading(**{f"m.m{i}": 1.0 for i in range(5)}))),
        ("string_length", orjson.dumps(_reading(**{"fw.note": "y" * 33}))),
        ("string_length", orjson.dumps(_reading(**{"fault.code": "z" * 33}))),
    ],
)
def test_each_limit_is_enforced_and_counted_under_its_own_reason(
    reason: str, payload: bytes
) -> None:
    ingest, stats = _ingest()
    kind = "scanner" if b"fault.code" in payload else "ups"
    result = ingest.handle(_topic("d1", kind=kind), payload, NOW)
    assert result.records == []
    assert result.deadletter is not None
    letter = orjson.loads(result.deadletter)
    assert "limit" in letter["reason"] or "longer than" in letter["reason"]
    assert letter["code"] == reason
    assert stats.deadletter_reasons == {reason: 1}


def test_limits_at_their_bound_are_accepted() -> None:
    ingest, stats = _ingest()
    payload = orjson.dumps(
        [_reading(**{"fw.note": "y" * 32, "m.a": 1.0, "m.b": 2.0, "m.c": 3}) for _ in range(5)]
    )
    assert len(payload) <= LIMITS.max_payload_bytes
    result = ingest.handle(_topic("d1"), payload, NOW)
    assert result.deadletter is None
    assert stats.readings_accepted == 5


@pytest.mark.parametrize(
    ("code", "payload"),
    [
        ("json", b"{ts: soon"),
        ("shape", orjson.dumps({"ts": NOW - 10, "metrics": {}})),
        ("shape", orjson.dumps({"ts": NOW - 10, "seq": 1, "metrics": {"m.a": 1.0}, "x": 1})),
        ("timestamp", orjson.dumps({"metrics": {"m.a": 1.0}})),
        ("seq", orjson.dumps({"ts": NOW - 10, "seq": -1, "metrics": {"m.a": 1.0}})),
        ("metric_name", orjson.dumps(_reading(**{"Bad": 1.0}))),
        ("type", orjson.dumps(_reading(**{"alerts": [1]}))),
        ("value", orjson.dumps(_reading(**{"ups.status": "OL LOST"}))),
    ],
)
def test_each_refusal_is_counted_under_its_code(code: str, payload: bytes) -> None:
    # The decoder names the code; nothing is guessed from the text of the reason.
    ingest, stats = _ingest()
    result = ingest.handle(_topic("d1"), payload, NOW)
    assert result.deadletter is not None and result.records == []
    assert orjson.loads(result.deadletter)["code"] == code
    assert stats.deadletter_reasons == {code: 1}


def test_rate_of_new_devices_is_limited_and_refused_devices_are_admitted_later() -> None:
    guard = CardinalityGuard(max_new_per_minute=3, max_devices=100)
    ingest, stats = _ingest(guard)
    good = orjson.dumps(_reading())
    refused = []
    for index in range(5):
        result = ingest.handle(_topic(f"d{index}"), good, NOW + index)
        if result.deadletter is not None:
            refused.append(orjson.loads(result.deadletter)["reason"])
            assert result.records == []
    assert len(refused) == 2
    assert all("max_new_devices_per_minute" in reason for reason in refused)
    assert stats.deadletter_reasons == {REASON_RATE: 2}
    # Known devices keep flowing while new ones are refused.
    assert ingest.handle(_topic("d0"), good, NOW + 5).deadletter is None
    # A minute later the window has moved on and the refused device is admitted.
    assert ingest.handle(_topic("d4"), good, NOW + 61).deadletter is None
    assert guard.known == 4


def test_total_devices_is_capped_and_fleet_devices_are_always_known() -> None:
    fleet = [("chop", "ups", "fleet-1"), ("chop", "ups", "fleet-2")]
    guard = CardinalityGuard(max_new_per_minute=1000, max_devices=3, known=fleet)
    ingest, stats = _ingest(guard)
    good = orjson.dumps(_reading())
    assert ingest.handle(_topic("new-1"), good, NOW).deadletter is None
    letter = ingest.handle(_topic("new-2"), good, NOW).deadletter
    assert letter is not None and "collector.max_devices is 3" in orjson.loads(letter)["reason"]
    status = ingest.handle("kordon/v1/chop/ups/new-3/status", b"online", NOW)
    assert status.deadletter is not None and status.records == []
    assert ingest.handle(_topic("fleet-2"), good, NOW).deadletter is None
    assert stats.deadletter_reasons == {REASON_TOTAL: 2}


def test_admitted_devices_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "guard" / "c.devices"
    guard = CardinalityGuard(max_new_per_minute=2, max_devices=100, state_file=state)
    assert guard.check(("s", "ups", "a"), NOW) is None
    assert guard.check(("s", "ups", "b"), NOW) is None
    guard.close()
    again = CardinalityGuard(max_new_per_minute=2, max_devices=100, state_file=state)
    # Both are known, so a restart does not spend the new-device budget on them.
    assert again.check(("s", "ups", "a"), NOW) is None
    assert again.check(("s", "ups", "b"), NOW) is None
    assert again.check(("s", "ups", "c"), NOW) is None
    assert again.check(("s", "ups", "d"), NOW) is None
    assert again.check(("s", "ups", "e"), NOW) == REASON_RATE
    again.close()


def test_rogue_client_inventing_devices_is_refused_end_to_end(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    """A real collector with a guard of 5 new devices a minute, fed 40 invented device ids.

    A broker of its own: retained status messages of other tests would be new devices too.
    """
    port = free_port()
    client_id = f"guard-{uuid.uuid4().hex[:8]}"
    collector = make_collector(
        mosquitto=own_mosquitto,
        client_id=client_id,
        extra_config=(
            f'  max_new_devices_per_minute: 5\n  max_batch: 3\n  metrics_addr: "127.0.0.1:{port}"\n'
        ),
    )
    collector.start(ready_line="collector ready")
    recorder = Recorder(own_mosquitto.host, own_mosquitto.port, DEADLETTER_TOPIC)
    publisher = Publisher(own_mosquitto.host, own_mosquitto.port)
    try:
        now = time.time()
        for index in range(40):
            payload = orjson.dumps({"ts": now - 5, "seq": 0, "metrics": {"battery.charge": 1.0}})
            publisher.publish(f"kordon/v1/{site}/ups/rogue-{index}/telemetry", payload)
        publisher.publish(
            f"kordon/v1/{site}/ups/rogue-0/telemetry",
            orjson.dumps(
                [{"ts": now - 4 + i, "metrics": {"battery.charge": 2.0}} for i in range(4)]
            ),
        )

        def ours() -> list[dict]:
            return [
                letter
                for letter in map(orjson.loads, recorder.payloads())
                if f"/{site}/" in letter["topic"]
            ]

        wait_until(lambda: len(ours()) >= 36, 20, what="36 dead letters")
        reasons = [letter["reason"] for letter in ours()]
        assert sum("max_new_devices_per_minute" in reason for reason in reasons) == 35
        assert sum("batch of 4 readings exceeds the limit of 3" in r for r in reasons) == 1

        rows = wait_until(
            lambda: (
                influxdb.query(
                    f"SELECT count(seq) FROM ups WHERE site='{site}' GROUP BY device", database
                )
                if len(influxdb.query(f"SELECT seq FROM ups WHERE site='{site}'", database)) >= 5
                else None
            ),
            20,
            what="the admitted devices' readings",
        )
        assert sorted(row["device"] for row in rows) == [f"rogue-{i}" for i in range(5)]

        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'kordon_collector_deadlettered_total{reason="cardinality_rate"} 35.0' in text
        assert 'kordon_collector_deadlettered_total{reason="batch_length"} 1.0' in text
        assert "kordon_collector_known_devices 5.0" in text
    finally:
        publisher.close()
        recorder.close()
        assert collector.stop() == 0, collector.tail_log()
