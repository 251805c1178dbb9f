"""``ReplaceBattery``: the condition and the words, from a UPS's learned battery model.

Three reasons, any of which fires it (the first that holds is the stated one, the others are
added as context): the UPS reports ``RB`` (its own self-test says so); the learned health is
under the line (default 80 % of rated capacity, IEEE 1188/450 practice); or the learned runtime
at today's load is under the autonomy the site requires. Learned reasons need evidence
(``min_confidence``): one discharge to empty, or partial ones of enough depth; the text names
them (date, time on battery, load, depth, how it was measured) so the technician can judge it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.battery.learn import BatteryModel, DischargeEvidence
from alerts.battery.live import Unit
from alerts.config.rules import ReplaceBatteryRule
from kordon.durations import approx_duration, format_duration

Result = tuple[bool, dict[str, str]]


def _date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%d %b %Y %H:%M UTC")


def describe_evidence(e: DischargeEvidence) -> str:
    load = f" at {e.mean_load_pct:.0f}% load" if e.mean_load_pct is not None else ""
    temp = f", {e.mean_temperature_c:.0f} °C" if e.mean_temperature_c is not None else ""
    how = "ran to empty" if e.method == "empty" else f"{100 * e.depth:.0f}% deep, from its voltage"
    return (
        f"outage of {_date(e.start)}: {approx_duration(e.duration_s)} on battery{load}{temp}, "
        f"{how} -> {e.health_pct:.0f}%"
    )


def evidence_text(model: BatteryModel, most: int = 4) -> str:
    shown = sorted(model.evidence, key=lambda e: e.start, reverse=True)[:most]
    text = "; ".join(describe_evidence(e) for e in shown)
    more = len(model.evidence) - len(shown)
    return text + (f"; and {more} earlier" if more > 0 else "")


def replace_battery(
    unit: Unit | None,
    rule: ReplaceBatteryRule,
    health_line: float,
    autonomy: float | None,
    name: str,
) -> Result:
    if unit is None or (unit.model is None and "RB" not in unit.flags):
        return False, {}  # the common case, once per reading: nothing learned, no RB
    model = unit.model
    learned = model is not None and model.health_pct is not None and (
        model.confidence >= rule.min_confidence
    )
    reasons: list[str] = []
    if rule.rb_flag and "RB" in unit.flags:
        reasons.append("the UPS reports RB (replace battery) from its own self-test")
    health = model.health_pct if learned and model is not None else None
    if health is not None and health < health_line:
        reasons.append(f"learned health {health:.0f}% of rated capacity, under the "
                       f"{health_line:.0f}% line")
    runtime = None
    if learned and model is not None and unit.load is not None:
        runtime = model.runtime_s(unit.load)
        if rule.autonomy and autonomy is not None and runtime < autonomy:
            reasons.append(
                f"from full it lasts {approx_duration(runtime)} at today's load "
                f"({unit.load:.0f}%), under the {format_duration(autonomy)} the site requires"
            )
    if not reasons:
        return False, {}
    figures = []
    if health is not None:
        figures.append(f"health {health:.0f}%")
    if runtime is not None and unit.load is not None:
        figures.append(f"{approx_duration(runtime)} at {unit.load:.0f}% load")
    tail = f" ({', '.join(figures)})" if figures else ""
    if learned and model is not None:
        basis = (
            f"Learned from {model.discharges} discharge{'s' if model.discharges != 1 else ''} "
            f"(confidence {model.confidence:.2f}): {evidence_text(model)}."
        )
    elif model is not None and model.health_pct is not None:
        basis = (f"Learned health so far {model.health_pct:.0f}%, on too little evidence "
                 f"(confidence {model.confidence:.2f}) to judge.")
    else:
        basis = "No discharge has been learned from yet."
    return True, {
        "summary": f"Replace the battery of UPS {name}: {reasons[0]}{tail}",
        "description": (
            f"{'; '.join(r[0].upper() + r[1:] for r in reasons)}. {basis} A worn battery runs "
            "flat long before the UPS's own runtime estimate says; plan the replacement before "
            "the next outage."
        ),
        "reason": "rb" if reasons[0].startswith("the UPS reports RB") else (
            "health" if health is not None and health < health_line else "autonomy"
        ),
    }
