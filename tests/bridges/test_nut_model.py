"""NUT's variable types, Kordon's names for NUT variables, and the sentinel rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kordon.model.nut import (
    VARIABLES,
    NutType,
    figure,
    is_unknown,
    metric_name,
    nut_type,
    typed_value,
    unknown_reason,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("battery.charge", NutType.NUMBER),
        ("ups.status", NutType.FLAGS),
        ("ups.alarm", NutType.FLAGS),
        ("ups.start.auto", NutType.WORD),
        ("outlet.switchable", NutType.WORD),  # outlet 0, the whole set
        ("outlet.2.switchable", NutType.WORD),
        ("outlet.group.1.id", NutType.TEXT),
        ("input.quality", NutType.TEXT),  # "opaque" in NUT's documentation
        ("ups.efficiency", NutType.NUMBER),
        ("ambient.temperature", NutType.NUMBER),  # sensor 0
        ("ambient.2.humidity.status", NutType.WORD),
        ("input.L1-N.voltage", NutType.NUMBER),
        ("input.l1_n.voltage", NutType.NUMBER),  # the Kordon name resolves too
        ("output.bypass.L2.current", NutType.NUMBER),
        ("input.source", None),  # documented without a type: not fixed
        ("ups.debug.T", None),
    ],
)
def test_types_come_from_nut_documentation(name: str, expected: NutType | None) -> None:
    assert nut_type(name) is expected


def test_the_type_rule_does_not_depend_on_the_driver() -> None:
    # The fleet: mge-shut says "yes", snmp-ups (Eaton 93PM) says "128.00".
    assert typed_value("ups.start.auto", "yes") == "yes"
    assert typed_value("ups.start.auto", "128.00") == "128.00"
    assert typed_value("input.quality", "0.00") == "0.00"
    assert typed_value("ups.serial", "0042") == "0042"
    assert typed_value("battery.charge", "087.5") == 87.5
    # A documented number the unit sent as something else is kept as it came.
    assert typed_value("ups.efficiency", "LoadTooLow") == "LoadTooLow"
    assert typed_value("battery.runtime", "64:41") == "64:41"
    # Undocumented: a number when it reads as one, unless the name is identity-like.
    assert typed_value("input.source", "2.00") == 2.0
    assert typed_value("ups.firmware.old", "1.05") == "1.05"


def test_names() -> None:
    assert metric_name("input.L1-N.voltage") == "input.l1_n.voltage"
    assert metric_name("experimental.statistics.rising_AVR_trigger_counter") == (
        "experimental.statistics.rising_avr_trigger_counter")
    assert metric_name("battery.charge") == "battery.charge"
    assert metric_name("9th.sensor") is None
    assert metric_name("x" * 65) is None


@pytest.mark.parametrize(
    ("name", "value", "unknown"),
    [
        ("battery.runtime", 65535.0, True),  # APC's "unknown": not "about 18.2 h left"
        ("battery.runtime", -1.0, True),
        ("battery.runtime", 1080.0, False),
        ("battery.runtime", 0.0, False),  # empty is a real answer
        ("battery.runtime", "64:41", True),  # cannot be computed with
        ("battery.charge", 255.0, True),
        ("battery.charge", -1.0, True),
        ("battery.charge", 100.0, False),
        ("ups.load", 112.0, False),  # overload is real
        ("ups.load", 4.6e255, True),  # a driver that read garbage
        ("ups.temperature", 302.0, True),
        ("ups.temperature", -5.0, False),
        ("input.bypass.frequency", 409.5, True),  # 12-bit all-ones, scaled
        ("input.bypass.voltage", 4095.0, True),
        ("input.voltage", -6437.0, True),
        ("input.voltage", 0.0, False),  # mains lost
        ("ups.timer.shutdown", -1.0, False),  # NUT's "no timer running"
        ("ups.serial", "65535", False),  # text is never judged
        ("input.source", 65535.0, False),  # undocumented: not judged
    ],
)
def test_sentinels(name: str, value: object, unknown: bool) -> None:
    assert is_unknown(name, value) is unknown, unknown_reason(name, value)


def test_figure_keeps_sentinels_out_of_what_pages_compute() -> None:
    from kordon.model.nut import figure

    assert figure("battery.runtime", 65535.0) is None  # the APC unit's "unknown"
    assert figure("battery.runtime", -1.0) is None
    assert figure("battery.charge", 255) is None
    assert figure("battery.runtime", "64:41") is None
    assert figure("battery.runtime", True) is None
    assert figure("battery.runtime", None) is None
    assert figure("battery.runtime", 1080) == 1080.0
    assert figure("battery.charge", 87.5) == 87.5
    assert figure("ups.timer.shutdown", -1.0) == -1.0  # NUT's "no timer running"
    assert figure("vendor.reading", 65535.0) == 65535.0  # undocumented: not judged


_SENTINELS = st.sampled_from([65535.0, 6553.5, 655.35, 4095.0, 409.5, 1e12, -1e12, 100.0, 0.0,
                              -1.0, 1000.0, 1500.0, 150.0, -50.0])


@settings(max_examples=3000, deadline=None)
@given(
    name=st.sampled_from([*sorted(VARIABLES), "vendor.reading", "ups.timer.shutdown"]),
    value=st.one_of(_SENTINELS, st.floats(), st.integers(-2**40, 2**40), st.booleans(),
                    st.text(max_size=3), st.none()),
)
def test_figure_agrees_with_the_sentinel_rule(name: str, value: object) -> None:
    """``figure`` compiles ``unknown_reason`` into one test per name: same verdict always."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    expected = float(value) if numeric and unknown_reason(name, value) is None else None
    got = figure(name, value)
    assert repr(got) == repr(expected)  # NaN of an undocumented name passes as itself


@pytest.mark.parametrize("name", ["battery.charge", "battery.runtime", "battery.voltage",
                                  "ups.load", "ups.realpower", "ups.temperature"])
def test_the_battery_models_figures_refuse_what_is_not_finite_or_all_ones(name: str) -> None:
    """``Reading.from_metrics`` (alerts/battery/readings.py) relies on it."""
    for value in (65535.0, 65535, math.inf, -math.inf, math.nan):
        assert figure(name, value) is None, (name, value)
