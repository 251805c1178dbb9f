"""Schedule foresight as the API serves it: read from the alerts role's ``foresight.json``.

The alerts role forecasts each UPS through its site's scheduled cuts and writes the result to
``$KORDON_DATA_DIR/foresight.json`` (:mod:`kordon.schedule.snapshot`); the API never imports
the engine. Here a site's entry becomes its answer: the schedule's state (``known``,
``unknown`` with the reason, ``emergency``), the next cut, and per UPS the verdict on the cuts
ahead with a sentence saying it. Unknown is never shown as "no cuts": a site the snapshot does
not cover, a snapshot that is missing or stale (the alerts role stopped writing it) all answer
``unknown`` with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.state import iso
from kordon.durations import approx_duration
from kordon.fleet import Fleet
from kordon.schedule.snapshot import SnapshotReader, snapshot_path

STALE_AFTER_S = 300.0  # wall seconds without a write (the role writes at least every minute)
NO_SOURCE = "no schedule source for this site in the fleet file"


def _pct(share: float | None) -> float | None:
    return None if share is None else round(100.0 * share, 1)


def _cut(cut: dict[str, Any], now: float | None) -> dict[str, Any]:
    return {
        "start": iso(cut["start"]),
        "end": iso(cut["end"]),
        "duration_s": cut["end"] - cut["start"],
        "definite": bool(cut.get("definite", True)),
        "in_progress": now is not None and cut["start"] <= now < cut["end"],
    }


def verdict_text(cut: dict[str, Any]) -> str:
    """One UPS's verdict on one cut, as the page and the alert say it."""
    verdict = cut["verdict"]
    if verdict == "generator":
        return "the generator carries this cut; the battery only bridges its start"
    if verdict == "survives":
        return f"survives with margin: about {max(cut['soc_end'], 0) * 100:.0f}% left when " \
               "the grid returns"
    if verdict == "runs-out":
        head = f"runs out {approx_duration(cut['short_s'])} before the grid returns"
    else:
        head = f"ends with only {max(cut['soc_end'], 0) * 100:.0f}% left"
    if cut["needed"] > 1.0:
        need = "even a full battery would not last it"
    else:
        need = (f"needs {cut['needed'] * 100:.0f}% at the cut's start, "
                f"expected {cut['soc_start'] * 100:.0f}%")
    shed = {True: "; holding its scanners in standby would carry it",
            False: "; holding its scanners in standby would not be enough"}.get(
        cut.get("shedding_carries"), "")
    return f"{head}; {need}{shed}"


def _ups(site: str, verdict: dict[str, Any], now: float | None) -> dict[str, Any]:
    cuts = [c for c in verdict.get("cuts", []) if now is None or c["end"] > now]
    status = verdict["status"]
    if status != "known":
        overall, text = status, verdict.get("reason") or status
    elif not cuts:
        overall, text = "no-cuts", "no scheduled cut ahead in the known schedule"
    else:
        overall, text = cuts[0]["verdict"], verdict_text(cuts[0])
    return {
        "id": f"{site}:{verdict['device']}",
        "device": verdict["device"],
        "status": status,
        "verdict": overall,
        "text": text,
        "charge_now_pct": _pct(verdict.get("soc_now")),
        "load_pct": verdict.get("load_pct"),
        "health_pct": verdict.get("health_pct"),
        "runtime_full_s": verdict.get("runtime_full_s"),
        "generator": bool(verdict.get("generator")),
        "cuts": [
            {
                **_cut(c, now),
                "verdict": c["verdict"],
                "text": verdict_text(c),
                "charge_start_pct": _pct(c["soc_start"]),
                "charge_end_pct": _pct(c["soc_end"]),
                "needed_pct": _pct(c["needed"]),
                "runs_out_at": iso(c.get("runs_out_at")),
                "short_s": c.get("short_s", 0.0),
                "shedding_carries": c.get("shedding_carries"),
                "mean_load_pct": c.get("mean_load_pct"),
            }
            for c in cuts
        ],
    }


def _unknown(site: str, reason: str, group: str | None, configured: bool) -> dict[str, Any]:
    return {"site": site, "status": "unknown", "reason": reason, "group": group,
            "configured": configured,
            "source": None, "known_until": None, "schedule_updated_at": None,
            "evaluated_at": None, "written_at": None, "next_cut": None, "cuts": [], "ups": []}


class Foresights:
    """The sites' schedule outlooks and UPS verdicts, from the latest snapshot."""

    def __init__(self, data_dir: Path, fleet: Fleet | None) -> None:
        self.reader = SnapshotReader(snapshot_path(data_dir))
        self.fleet = fleet

    def sites(self, wall_now: float) -> list[dict[str, Any]]:
        document = self.reader.read()
        names = set(self.fleet.sites) if self.fleet is not None else set()
        if document is not None:
            names |= set(document.get("sites", {}))
        return [self._site(name, document, wall_now) for name in sorted(names)]

    def site(self, name: str, wall_now: float) -> dict[str, Any] | None:
        document = self.reader.read()
        known = (self.fleet is not None and name in self.fleet.sites) or (
            document is not None and name in document.get("sites", {}))
        return self._site(name, document, wall_now) if known else None

    def _group(self, name: str) -> str | None:
        if self.fleet is None or name not in self.fleet.sites:
            return None
        return self.fleet.sites[name].schedule_group

    def _site(self, name: str, document: dict[str, Any] | None,
              wall_now: float) -> dict[str, Any]:
        group = self._group(name)
        configured = self.fleet is not None and name in self.fleet.sites and (
            self.fleet.sites[name].schedule is not None)
        if document is None:
            reason = ("no forecast yet: the alerts role has not written one" if configured
                      else NO_SOURCE)
            return _unknown(name, reason, group, configured)
        age = wall_now - float(document["written_at"])
        if age > STALE_AFTER_S:
            return _unknown(name, f"the forecast is stale: the alerts role last wrote it "
                                  f"{approx_duration(age)} ago", group, configured)
        entry = document["sites"].get(name)
        if entry is None or entry.get("outlook") is None:
            return _unknown(name, "the alerts role has no forecast for this site"
                            if configured else NO_SOURCE, group, configured)
        # Each site's forecast is on its own clock (a stream's scenario time); older
        # snapshots have one time for all.
        now = entry.get("evaluated_at", document.get("evaluated_at"))
        outlook = entry["outlook"]
        configured = configured or bool(outlook.get("source"))
        cuts = [_cut(c, now) for c in outlook["cuts"] if now is None or c["end"] > now]
        return {
            "site": name,
            "status": outlook["status"],
            "reason": outlook["reason"],
            "configured": configured,
            "group": outlook.get("group") or group,
            "source": outlook.get("source") or None,
            "known_until": iso(outlook.get("known_until")),
            "schedule_updated_at": iso(outlook.get("updated_at")),
            "evaluated_at": iso(now),
            "written_at": iso(document["written_at"]),
            "next_cut": cuts[0] if cuts and outlook["status"] == "known" else None,
            "cuts": cuts if outlook["status"] == "known" else [],
            "ups": [_ups(name, v, now) for v in entry.get("ups", [])],
        }
