"""InfluxDB and Kordon's embedded SQLite store answer the same questions the same way.

The embedded store stands in for InfluxDB in ``kordon demo``; these tests write the same line
protocol to both (InfluxDB is the real server) and compare every answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kordon.config import InfluxSettings
from kordon.storage.influx import InfluxRejected
from kordon.storage.lineprotocol import encode_line
from kordon.storage.stores import open_telemetry_store
from kordon.storage.telemetry import HistoryRequest, TelemetryStore
from testkit import InfluxServer

T0 = 1_790_000_400 * 10**9  # a multiple of 600 s: history buckets start on it
S = 10**9


def body() -> bytes:
    lines = []
    for i in range(60):  # one reading a minute for an hour
        fields: dict = {"battery.charge": 100.0 - i, "ups.status": "OB DISCHRG" if i > 30 else "OL"}
        if i % 10 == 0:
            fields["ups.beeper"] = i > 30
        lines.append(
            encode_line("ups", {"site": "chop", "device": "ups-1"}, fields, T0 + i * 60 * S)
        )
    lines.append(
        encode_line(
            "ups", {"site": "chop", "device": "ups-2"}, {"battery.charge": 50.0}, T0 + 5 * S
        )
    )
    lines.append(
        encode_line(
            "device_status",
            {"site": "chop", "kind": "ups", "device": "ups-2"},
            {"state": "online", "online": True},
            T0,
        )
    )
    lines.append(
        encode_line(
            "device_status",
            {"site": "chop", "kind": "ups", "device": "ups-2"},
            {"state": "offline", "online": False},
            T0 + 100 * S,
        )
    )
    return "\n".join(lines).encode()


@pytest.fixture(params=["influxdb", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> Iterator[TelemetryStore]:
    if request.param == "influxdb":
        server: InfluxServer = request.getfixturevalue("influxdb")
        settings = InfluxSettings(url=server.url, database=database)
    else:
        settings = InfluxSettings(url=f"sqlite://{tmp_path}/telemetry.db")
    telemetry = open_telemetry_store(settings)
    telemetry.create_database()
    telemetry.write(body())
    yield telemetry
    telemetry.close()


def test_latest_gives_the_newest_point_and_last_values(store: TelemetryStore) -> None:
    points = {p.device: p for p in store.latest("ups", T0 - S)}
    assert set(points) == {"ups-1", "ups-2"}
    newest = points["ups-1"]
    assert newest.ts_ns == T0 + 59 * 60 * S
    assert newest.fields == {"battery.charge": 41.0, "ups.status": "OB DISCHRG"}
    assert newest.last_values["ups.beeper"] is True
    assert newest.last_values["battery.charge"] == 41.0
    assert points["ups-2"].fields == {"battery.charge": 50.0}


def test_latest_honours_since(store: TelemetryStore) -> None:
    assert [p.device for p in store.latest("ups", T0 + 30 * S)] == ["ups-1"]


def test_statuses_give_the_last_state(store: TelemetryStore) -> None:
    [status] = store.statuses(T0 - S)
    assert (status.site, status.kind, status.device) == ("chop", "ups", "ups-2")
    assert status.state == "offline" and status.ts_ns == T0 + 100 * S


def test_history_aggregates_by_step(store: TelemetryStore) -> None:
    request = HistoryRequest(
        measurement="ups",
        site="chop",
        device="ups-1",
        metrics={"battery.charge": "mean", "ups.status": "last"},
        start_ns=T0,
        end_ns=T0 + 3600 * S,
        step_s=600,
    )
    history = store.history(request)
    charge = history["battery.charge"]
    assert len(charge) == 6
    assert charge[0] == [T0 // 10**6, pytest.approx(95.5)]  # mean of 100..91
    assert [value for _, value in history["ups.status"]] == ["OL"] * 3 + ["OB DISCHRG"] * 3


def test_history_of_an_unknown_device_is_empty(store: TelemetryStore) -> None:
    request = HistoryRequest(
        "ups", "chop", "nope", {"battery.charge": "mean"}, T0, T0 + 3600 * S, 60
    )
    assert store.history(request) == {"battery.charge": []}


def test_rewriting_a_point_overwrites_it(store: TelemetryStore) -> None:
    store.write(
        encode_line(
            "ups", {"site": "chop", "device": "ups-2"}, {"battery.charge": 7.0}, T0 + 5 * S
        ).encode()
    )
    points = {p.device: p for p in store.latest("ups", T0 - S)}
    assert points["ups-2"].fields == {"battery.charge": 7.0}
    request = HistoryRequest(
        "ups", "chop", "ups-2", {"battery.charge": "count"}, T0, T0 + 60 * S, 60
    )
    assert store.history(request)["battery.charge"][0][1] == 1


def test_unparseable_lines_are_refused(store: TelemetryStore) -> None:
    with pytest.raises(InfluxRejected):
        store.write(b"ups,site=chop value=")
