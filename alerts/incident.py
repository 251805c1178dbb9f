"""One site outage told as one incident that is always current.

``SitePowerOutage`` is the incident: its text says what is true now (the site's grid, each
UPS's time to empty or when it ran flat, which devices went dark and why), and, once the grid
is back, what happened. The text is rebuilt whenever the site's picture changes; the
dispatcher sends it again as an *update* of the same group when :func:`material` changes,
rate-limited (docs/alerts.md, "Incident updates"). Running figures (charge, minutes left) ride
along in every update but never trigger one by themselves: the depletion alert pages the
moment a UPS's time runs short.

Reasons come from the site's own reports and the fleet topology (``fed_by``), never from a
guess: "scanner-1 stopped: its UPS ups-scan-1 ran flat".
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.tracker import DeviceState, SiteState
from kordon.durations import approx_duration, format_duration
from kordon.model.kinds import DeviceKind

SHOWN = 8  # devices named in a sentence before "and N more"
RECENT = 300.0  # seconds after power came back during which the "what happened" text is built


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")


def _names(items: list[str]) -> str:
    if len(items) > SHOWN:
        return ", ".join(items[:SHOWN]) + f" and {len(items) - SHOWN} more"
    return ", ".join(items)


def _failing(state: DeviceState) -> bool:
    return state.on_battery or state.grid_ok is False or state.dark


def outage_start(site: SiteState) -> float | None:
    """When the devices that lack grid power now first lost it (event time)."""
    starts = [s.battery_since for s in site.devices.values()
              if _failing(s) and s.battery_since is not None]
    return min(starts) if starts else None


def _ups_line(state: DeviceState) -> tuple[str, str]:
    """(material status, words) of one UPS."""
    if state.dark and state.dark_at is not None:
        silent = f", silent since {_at(state.last_seen)}" if state.offline else ""
        return "flat", f"{state.device} ran flat at {_at(state.dark_at)}{silent}"
    if state.offline:
        return "silent", f"{state.device} silent since {_at(state.last_seen)}"
    if state.on_battery:
        charge = f"{state.charge:.0f}%" if state.charge is not None else "unknown charge"
        if state.eta is not None:
            return "battery", f"{state.device} {charge}, empty in {approx_duration(state.eta)}"
        if state.runtime is not None:
            return "battery", (
                f"{state.device} {charge}, {approx_duration(state.runtime)} left by its own "
                "estimate"
            )
        return "battery", f"{state.device} on battery at {charge}"
    return "mains", f"{state.device} on mains"


def _dark_reason(state: DeviceState, site: SiteState) -> str | None:
    """Why a non-UPS device is dark now, or None when it is not."""
    feed = site.devices.get(state.fed_by or "")
    ups_flat = feed is not None and feed.kind is DeviceKind.UPS and feed.dark
    if state.dark and state.dark_at is not None:
        if ups_flat:
            return f"{state.device} stopped at {_at(state.dark_at)}: its UPS {feed.device} ran flat"  # type: ignore[union-attr]
        return f"{state.device} stopped at {_at(state.dark_at)}: no power"
    if state.offline and (_failing(state) or ups_flat):
        if ups_flat:
            why = f"its UPS {feed.device} ran flat"  # type: ignore[union-attr]
        elif state.on_battery:
            why = "it was on its battery"
        else:
            why = "no grid power"
        return f"{state.device} went silent at {_at(state.last_seen)}: {why}"
    return None


def picture(site: SiteState) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """([(ups, material status, words)], [(dark device, words)]), in device order."""
    ups = []
    dark = []
    for name in sorted(site.devices):
        state = site.devices[name]
        if state.kind is DeviceKind.UPS:
            if state.battery_since is None and not state.offline:
                continue  # never lost mains since the engine started: nothing to tell
            status, words = _ups_line(state)
            ups.append((name, status, words))
        else:
            reason = _dark_reason(state, site)
            if reason is not None:
                dark.append((name, reason))
    return ups, dark


def material(site: SiteState, on_generator: bool) -> frozenset[tuple[str, ...]]:
    """The bad news an incident update is sent for, as facts: the site without a generator,
    a UPS on battery, run flat or silent, a device dark. A new fact is worse news and is
    sent within seconds; a fact that went away (a generator started, a UPS back on mains, a
    device back) is good news that rides with the next regular notification."""
    ups, dark = picture(site)
    facts: set[tuple[str, ...]] = set()
    if not on_generator:
        facts.add(("no generator",))
    facts.update((status, name) for name, status, _ in ups if status != "mains")
    facts.update(("dark", name) for name, _ in dark)
    return frozenset(facts)


def outage_texts(
    site: SiteState, lost: int, sensors: int, on_generator: bool, quorum: bool
) -> dict[str, str]:
    """The incident's summary and description while the site has no grid."""
    since = outage_start(site)
    title = site.name.capitalize()
    when = f" since {_at(since)}" if since is not None else ""
    if on_generator and not quorum:
        head = f"{title} lost grid power and runs on its generator{when}"
    else:
        head = f"{title} lost grid power{when}"
    ups, dark = picture(site)
    on_battery = [words for _, status, words in ups if status != "mains"]
    parts = [head]
    if on_battery:
        parts.append(_names(on_battery))
    if dark:
        parts.append("dark: " + _names([name for name, _ in dark]))
    summary = "; ".join(parts)
    lines = [
        f"{lost} of {sensors} power sensors at {site.name} show grid loss{when}."
    ]
    if ups:
        lines.append("UPS: " + _names([words for _, _, words in ups]) + ".")
    if dark:
        lines.append("Dark: " + "; ".join(words for _, words in dark[:SHOWN])
                     + (f"; and {len(dark) - SHOWN} more" if len(dark) > SHOWN else "") + ".")
    else:
        lines.append("Every device still has power.")
    lines.append(
        "Per-device 'on battery' and power-caused offline alerts of this site are folded "
        "into this one; it is updated when the picture changes."
    )
    return {"summary": summary, "description": " ".join(lines)}


def ended_texts(site: SiteState) -> dict[str, str]:
    """What the resolved incident says: how long the site was without grid, what ran flat and
    what went dark. Empty unless power came back in the last few minutes."""
    backs = [s.mains_at for s in site.devices.values()
             if s.mains_at is not None and s.last_seen - s.mains_at <= RECENT]
    if not backs:
        return {}
    back = min(backs)
    starts = [s.battery_since for s in site.devices.values()
              if s.battery_since is not None and s.mains_at is not None
              and s.last_seen - s.mains_at <= RECENT]
    start = min(starts) if starts else None
    title = site.name.capitalize()
    lasted = f" after {format_duration(back - start)} without it" if start is not None else ""
    since = f" (lost at {_at(start)})" if start is not None else ""
    flat = [f"{s.device} at {_at(s.dark_at)}" for s in sorted(
        site.devices.values(), key=lambda d: d.device)
        if s.kind is DeviceKind.UPS and s.dark_at is not None and s.battery_since is not None
        and start is not None and s.dark_at >= start]
    stopped = [s.device for s in sorted(site.devices.values(), key=lambda d: d.device)
               if s.kind is not DeviceKind.UPS and s.dark_at is not None
               and start is not None and s.dark_at >= start]
    story = []
    if flat:
        story.append("ran flat: " + _names(flat))
    if stopped:
        story.append("stopped: " + _names(stopped))
    summary = f"{title} has grid power again since {_at(back)}{lasted}"
    if story:
        summary += "; " + "; ".join(story)
    description = (
        f"Grid power returned at {site.name} at {_at(back)}{since}. "
        + ("Devices that went dark may need minutes to boot and warm up." if story
           else "No device lost power.")
    )
    return {"summary": summary, "description": description}
