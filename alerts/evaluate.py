"""Rule conditions and the words of their notifications.

Each function looks at the tracked state and returns whether the condition holds and the
``summary``/``description`` an on-call engineer reads on a phone: what, where, how bad, in
numbers ("UPS chop/ups-scan-1 will be empty in 14 min"), not metric names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts import incident
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


def _at(epoch: float) -> str:
    """``09:41 UTC``: when something happened, as a person on the phone says it."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")


def _charge(state: DeviceState) -> str:
    return f"{state.charge:.0f}%" if state.charge is not None else "unknown charge"


def mains_power_lost(state: DeviceState) -> Result:
    if not state.on_battery or state.kind is DeviceKind.SCANNER:
        return False, _back_on_mains(state)
    left = ""
    if state.dark and state.dark_at is not None:
        noun = NOUN[state.kind]
        return True, {
            "summary": f"{noun} {state.name} ran flat at {_at(state.dark_at)}",
            "description": (
                f"{noun} {state.device} at {state.site} lost its mains supply at "
                f"{_at(state.battery_since or state.dark_at)} and its battery ran flat at "
                f"{_at(state.dark_at)}: what it feeds has no power. Check the grid feed and "
                "the site generator."
            ),
        }
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
        return False, _back_on_mains(state)
    if state.dark and state.dark_at is not None:
        return True, {
            "summary": f"Battery of {state.name} ran flat at {_at(state.dark_at)}",
            "description": (
                f"{NOUN[state.kind]} {state.device} at {state.site} is out of battery"
                + (f" (low battery since {_at(state.lb_at)})" if state.lb_at else "")
                + ": its load is without power until mains or a generator returns."
            ),
        }
    why = "the UPS reports LOW BATTERY" if flag else f"under the {rule.charge_below:.0f}% limit"
    left = f"; {_minutes(state.eta)} left" if state.eta is not None else ""
    return True, {
        "summary": f"Battery of {state.name} is low: {_charge(state)} ({why}){left}",
        "description": (
            f"{NOUN[state.kind]} {state.device} at {state.site} is on battery and nearly empty; "
            "its load will shut down soon. Restore power or shed load now."
        ),
    }


def _out_of_power(state: DeviceState) -> bool:
    """The device's own report says it has no power left to give or to run on."""
    if state.kind is DeviceKind.UPS:
        return state.on_battery and (
            state.output_off or (state.charge is not None and state.charge <= 0.0)
        )
    return state.power_source == "none"


def note_power(state: DeviceState, when: float) -> None:
    """Remember when (event time) this device went on battery, reported LB, ran flat or
    stopped, and got power back: the story the incident and the resolved notices tell."""
    failing = state.on_battery or state.grid_ok is False
    if failing and (state.battery_since is None or state.mains_at is not None):
        state.battery_since, state.mains_at = when, None  # a new outage for this device
        state.lb_at = state.dark_at = state.dark_end = None
    if state.lb_flag and state.on_battery and state.lb_at is None:
        state.lb_at = when
    out = _out_of_power(state)
    if out and not state.dark:
        state.dark_at, state.dark_end = when, None
    elif not out and state.dark:
        state.dark_end = when
    if not failing and state.battery_since is not None and state.mains_at is None:
        state.mains_at = when


def _back_on_mains(state: DeviceState) -> dict[str, str]:
    """What a resolved power alert of a device says: what happened, not the last estimate.

    Only just after power came back (cheap for the devices that never lost it)."""
    back = state.mains_at
    if back is None or state.battery_since is None or state.last_seen - back > 300.0:
        return {}
    noun = NOUN[state.kind]
    story = f"on battery {format_duration(back - state.battery_since)}"
    if state.dark_at is not None:
        story += f", ran flat at {_at(state.dark_at)}"
    elif state.charge is not None:
        story += f", {_charge(state)} charge left"
    return {
        "summary": f"{noun} {state.name} is back on mains since {_at(back)} ({story})",
        "description": (
            f"{noun} {state.device} at {state.site} lost mains at {_at(state.battery_since)} "
            f"and has it again since {_at(back)}."
        ),
    }


def update_depletion(state: DeviceState, when: float, rules: DeviceRules) -> None:
    """Feed the discharge history with one reading (event time) and refit."""
    note_power(state, when)
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
    if firing and state.kind is DeviceKind.UPS and state.dark and state.dark_at is not None:
        # After empty the fit has nothing to predict; say what happened instead.
        return True, {
            "summary": f"{NOUN[state.kind]} {state.name} ran flat at {_at(state.dark_at)}",
            "description": (
                f"Its battery is empty since {_at(state.dark_at)} (on battery since "
                f"{_at(state.battery_since or state.dark_at)}); what it feeds has no power "
                "until mains or a generator returns."
            ),
        }
    if state.eta is None or not state.on_battery or state.charging:
        return False, _back_on_mains(state)
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
        if not firing:
            return False, {}
        return False, {
            "summary": (
                f"{NOUN[state.kind]} {state.name} no longer runs out soon: "
                f"{_minutes(eta)} left at {_charge(state)} charge"
            ),
            "description": "The discharge slowed down (less load, or a generator took over).",
        }
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


def _on_generator(site: SiteState) -> int:
    # A site-fed device on "generator" is direct evidence that the site bus runs on its
    # generator; UPS units and radios behind the same bus cannot tell generator from grid.
    return sum(
        1 for s in site.devices.values() if s.power_source == "generator" and s.grid_ok is False
    )


def site_power_outage(site: SiteState, rules: SiteRules) -> Result:
    """The site's incident (alerts.incident): what is true now, and what happened after."""
    sensors, lost = site.power_counts()
    rule = rules.outage
    on_generator = _on_generator(site)
    quorum = sensors and lost >= min(rule.min_devices, sensors) and lost >= rule.quorum * sensors
    if not (quorum or on_generator):
        return False, incident.ended_texts(site)
    return True, incident.outage_texts(site, lost, sensors, bool(on_generator), bool(quorum))


def site_material(site: SiteState) -> frozenset[tuple[str, ...]]:
    """What an update of the site's incident is sent for (see alerts.incident)."""
    return incident.material(site, bool(_on_generator(site)))


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
