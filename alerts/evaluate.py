"""Rule conditions and the words of their notifications.

Each function looks at the tracked state and returns whether the condition holds and the
``summary``/``description`` an on-call engineer reads on a phone: what, where, how bad, in
numbers ("UPS chop/ups-scan-1 will be empty in 14 min"), not metric names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.depletion import DischargeHistory, time_to_empty
from alerts.rules import DeviceRules, SiteRules
from alerts.tracker import DeviceState, SiteState
from kordon.durations import approx_duration, format_duration
from kordon.model.kinds import DeviceKind

Result = tuple[bool, dict[str, str]]
NOUN = {
    DeviceKind.UPS: "UPS",
    DeviceKind.SCANNER: "Scanner",
    DeviceKind.RADIO: "Radio base station",
}


def _minutes(seconds: float) -> str:
    """``under a minute``, ``about 8 minutes``: the phrase carries its own "about"."""
    return approx_duration(seconds)


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


def _charge(state: DeviceState) -> str:
    return f"{state.charge:.0f}%" if state.charge is not None else "unknown charge"


def mains_power_lost(state: DeviceState) -> Result:
    if not state.on_battery or state.kind is DeviceKind.SCANNER:
        return False, {}
    left = ""
    if state.eta is not None:
        left = f", {_minutes(state.eta)} left"
    elif state.runtime is not None:
        left = f", {_minutes(state.runtime)} left by its own estimate"
    noun = NOUN[state.kind]
    summary = f"{noun} {state.name} runs on battery: {_charge(state)} charge{left}"
    detail = (
        f"input at {state.input_voltage:.0f} V" if state.input_voltage is not None
        else f"power source {state.power_source}"
    )
    return True, {
        "summary": summary,
        "description": (
            f"{noun} {state.device} at {state.site} lost its mains supply ({detail}). "
            "Check the grid feed and the site generator."
        ),
    }


def battery_low(state: DeviceState, rules: DeviceRules) -> Result:
    rule = rules.low
    flag = rule.low_battery_flag and state.lb_flag and state.on_battery
    level = state.charge is not None and state.charge < rule.charge_below and state.on_battery
    if not (flag or level):
        return False, {}
    why = "the UPS reports LOW BATTERY" if flag else f"under the {rule.charge_below:.0f}% limit"
    left = f"; {_minutes(state.eta)} left" if state.eta is not None else ""
    return True, {
        "summary": f"Battery of {state.name} is low: {_charge(state)} ({why}){left}",
        "description": (
            f"{NOUN[state.kind]} {state.device} at {state.site} is on battery and nearly empty; "
            "its load will shut down soon. Restore power or shed load now."
        ),
    }


def update_depletion(state: DeviceState, when: float, rules: DeviceRules) -> None:
    """Feed the discharge history with one reading (event time) and refit."""
    rule = rules.depletion
    discharging = state.on_battery and not state.charging and state.charge is not None
    if not discharging:
        state.history = None  # a new discharge starts a new fit: never fit across a recharge
        state.eta = state.rate = None
        return
    if state.history is None:
        state.history = DischargeHistory()
    assert state.charge is not None
    state.history.add(when, state.charge, rule.window)
    history = state.history
    if len(history) < rule.min_points or history.span() < rule.min_span:
        state.eta = state.rate = None
        return
    fit = time_to_empty(history)
    state.eta, state.rate = fit if fit is not None else (None, None)


def depletion_imminent(
    state: DeviceState,
    rules: DeviceRules,
    firing: bool,
    learned: tuple[float, str] | None = None,
) -> Result:
    """``learned``: (seconds to empty by the UPS's learned battery curve, what it is), used
    instead of the UPS's own ``battery.runtime`` when it is more pessimistic (a worn battery's
    firmware counts against the nameplate and stays optimistic to the end)."""
    rule = rules.depletion
    if state.eta is None or not state.on_battery or state.charging:
        return False, {}
    # Hysteresis: to clear, the prediction must rise well above the threshold.
    limit = rule.threshold * (rule.resolve_factor if firing else 1.0)
    own = state.runtime
    eta = state.eta
    use_learned = learned is not None and (own is None or learned[0] < own)
    if use_learned:
        assert learned is not None
        own = learned[0]
        eta = min(eta, learned[0])
    agrees = own is None or own < limit * rule.runtime_factor
    if eta >= limit or not agrees:
        return False, {}
    if use_learned:
        assert learned is not None
        said = (f", {_minutes(state.runtime)} by the UPS's own estimate"
                if state.runtime is not None else "")
        summary_tail = f" by {learned[1]}{said}"
        own_text = (
            f"; by {learned[1]}, which is more pessimistic than the UPS's own estimate and so "
            f"is the one used, it is empty in {_minutes(learned[0])}"
        )
    else:
        summary_tail = ""
        own_text = f"; the UPS itself estimates {_minutes(own)}" if own is not None else ""
    return True, {
        "summary": (
            f"{NOUN[state.kind]} {state.name} will be empty in {_minutes(eta)} "
            f"({_charge(state)} charge, falling {state.rate or 0:.1f}%/min){summary_tail}"
        ),
        "description": (
            f"Least-squares fit of the last {format_duration(rule.window)} of battery charge "
            f"predicts empty at {_clock(_now_plus(state))}{own_text}. Restore power, start "
            "the generator or shed load before then."
        ),
    }


def _now_plus(state: DeviceState) -> float:
    assert state.history is not None and state.eta is not None
    return state.history.times[-1] + state.eta


def device_offline(state: DeviceState, cause: str | None, now: float) -> Result:
    if not state.offline:
        return False, {}
    if state.will_offline:
        how = "disconnected (its MQTT last will says offline)"
    else:
        how = f"silent for {format_duration(now - state.last_seen)}"
    summary = f"{NOUN[state.kind]} {state.name} is offline: {how}"
    description = (
        f"Last heard at {_clock(state.last_seen)}. Check its network link and power."
    )
    if cause:
        summary += " — power"
        description = f"Power: {cause}. Last heard at {_clock(state.last_seen)}."
    return True, {"summary": summary, "description": description}


def site_power_outage(site: SiteState, rules: SiteRules) -> Result:
    sensors, lost = site.power_counts()
    rule = rules.outage
    # A site-fed device on "generator" is direct evidence that the site bus runs on its
    # generator; UPS units and radios behind the same bus cannot tell generator from grid.
    on_generator = sum(
        1 for s in site.devices.values() if s.power_source == "generator" and s.grid_ok is False
    )
    quorum = sensors and lost >= min(rule.min_devices, sensors) and lost >= rule.quorum * sensors
    if not (quorum or on_generator):
        return False, {}
    worst: DeviceState | None = None
    for state in site.devices.values():
        if state.eta is not None and (worst is None or state.eta < (worst.eta or 0)):
            worst = state
    tail = ""
    if worst is not None and worst.eta is not None:
        tail = f"; {NOUN[worst.kind]} {worst.device} will be empty in {_minutes(worst.eta)}"
    on_battery = sorted(s.device for s in site.devices.values() if s.grid_ok is False)
    if on_generator and not quorum:
        tail = "; the site runs on its generator" + tail
    return True, {
        "summary": f"{site.name.capitalize()} lost grid power{tail}",
        "description": (
            f"{lost} of {sensors} power sensors at {site.name} show grid loss "
            f"({', '.join(on_battery[:8])}{', ...' if len(on_battery) > 8 else ''}). "
            "Per-device 'on battery' alerts of this site are folded into this one."
        ),
    }


def site_unreachable(site: SiteState, rules: SiteRules, now: float) -> Result:
    total = len(site.devices)
    if total < rules.unreachable.min_devices:
        return False, {}
    if any(not state.offline for state in site.devices.values()):
        return False, {}
    last = max(state.last_seen for state in site.devices.values())
    return True, {
        "summary": f"Site {site.name} is unreachable: all {total} devices silent",
        "description": (
            f"Nothing heard from any device at {site.name} since {_clock(last)} "
            f"({format_duration(now - last)} ago): the site's network link, its router or "
            "its power. Per-device offline alerts are folded into this one."
        ),
    }
