"""A UPS's "unknown" values (65535 s of runtime, charge outside 0-100) stay stored as sent but
never become a figure: the page shows no time to empty and the engine keeps no runtime."""

from __future__ import annotations

from alerts.tracker import DeviceState as EngineDevice
from api.state import DeviceState as PageDevice
from kordon.model.kinds import DeviceKind


def test_the_page_shows_no_time_to_empty_for_a_runtime_of_65535() -> None:
    device = PageDevice(site="chop", device="ups-1", kind=DeviceKind.UPS)
    device.merge(1_000, {"ups.status": "OB DISCHRG", "battery.runtime": 65535.0,
                         "battery.charge": 255.0})
    view = device.view(now=1.0, offline_after=3.0)
    assert device.values["battery.runtime"] == 65535.0  # stored as the unit said
    assert view["time_to_empty"] is None and view["battery_charge"] is None
    device.merge(2_000, {"battery.runtime": 840.0, "battery.charge": 64.0})
    view = device.view(now=2.0, offline_after=3.0)
    assert view["time_to_empty"] == 840.0 and view["battery_charge"] == 64.0


def test_the_engine_drops_a_previous_runtime_when_the_unit_says_unknown() -> None:
    device = EngineDevice("chop", DeviceKind.UPS, "ups-1", None)
    device.apply({"ups.status": "OB DISCHRG", "battery.runtime": 900.0, "battery.charge": 70.0})
    assert device.runtime == 900.0 and device.charge == 70.0
    device.apply({"ups.status": "OB DISCHRG", "battery.runtime": 65535.0, "battery.charge": -3.0})
    assert device.runtime is None and device.charge is None
