"""Offline validation of dashboard JSON: what Grafana would accept but show broken.

Grafana imports a dashboard with a duplicate uid by silently overwriting another one, renders
a panel whose data source uid does not exist as an error box, and leaves ``$unknown`` in a
query verbatim so InfluxDB answers with a parse error. None of that needs a server to find,
so ``kordon dashboards check`` finds it before a push or a provisioning reload does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dashboards import DATASOURCE_UID
from dashboards.locate import dashboard_files

Json = dict[str, Any]

# Grafana's global variables (and InfluxQL's $timeFilter): always defined.
BUILTIN_VARIABLES = frozenset(
    {
        "__interval",
        "__interval_ms",
        "__rate_interval",
        "__range",
        "__range_s",
        "__range_ms",
        "__from",
        "__to",
        "__timeFilter",
        "__timezone",
        "__dashboard",
        "__org",
        "__user",
        "__name",
        "__url_time_range",
        "__all",
        "interval",
        "timeFilter",
    }
)
# Data sources every Grafana has, besides the provisioned ones.
BUILTIN_DATASOURCES = frozenset({"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"})

# $name, ${name}, ${name:format}, [[name]] (deprecated but still interpolated)
_VARIABLE = re.compile(
    r"\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}"
    r"|\[\[(?P<bracketed>[A-Za-z_][A-Za-z0-9_]*)(?::[^\]]*)?\]\]"
)
_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class Problem:
    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.where}: {self.message}"
            if self.where
            else (f"{self.file}: {self.message}")
        )


def variables_in(text: str) -> set[str]:
    names = set()
    for match in _VARIABLE.finditer(text):
        names.add(match["plain"] or match["braced"] or match["bracketed"])
    return names


def provisioned_datasource_uids(folder: Path) -> set[str]:
    """Data source uids declared in ``provisioning/datasources/*.yaml`` (plus Kordon's own)."""
    uids = {DATASOURCE_UID}
    for path in sorted((folder / "provisioning" / "datasources").glob("*.y*ml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for source in document.get("datasources") or []:
            if isinstance(source, dict) and source.get("uid"):
                uids.add(str(source["uid"]))
    return uids


def all_panels(panels: list[Json]) -> Iterator[Json]:
    """Panels including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels") or [])


def _queries(dashboard: Json) -> Iterator[tuple[str, str]]:
    """(where, text) of every string Grafana interpolates variables into."""
    for panel in all_panels(dashboard.get("panels") or []):
        where = f"panel {panel.get('id')} {panel.get('title', '')!r}"
        yield where, str(panel.get("title", ""))
        for target in panel.get("targets") or []:
            yield f"{where} target {target.get('refId')}", str(target.get("query", ""))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        query = variable.get("query", "")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        yield f"variable {variable.get('name')!r}", text
    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        where = f"annotation {annotation.get('name')!r}"
        yield where, str(annotation.get("query", ""))
        yield where, str((annotation.get("target") or {}).get("query", ""))


def _datasource_refs(dashboard: Json) -> Iterator[tuple[str, Any]]:
    for panel in all_panels(dashboard.get("panels") or []):
        where = f"panel {panel.get('id')} {panel.get('title', '')!r}"
        if panel.get("type") != "row" or panel.get("datasource"):
            yield where, panel.get("datasource")
        for target in panel.get("targets") or []:
            if "datasource" in target:
                yield f"{where} target {target.get('refId')}", target["datasource"]
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") == "query":
            yield f"variable {variable.get('name')!r}", variable.get("datasource")
    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        yield f"annotation {annotation.get('name')!r}", annotation.get("datasource")


def _datasource_uid(ref: Any) -> str | None:
    if isinstance(ref, dict):
        uid = ref.get("uid")
        return str(uid) if uid is not None else None
    if isinstance(ref, str):  # legacy: a name; only templated ones are acceptable
        return ref
    return None


def check_dashboard(name: str, dashboard: Json, datasources: set[str]) -> list[Problem]:
    problems: list[Problem] = []

    def problem(where: str, message: str) -> None:
        problems.append(Problem(name, where, message))

    uid = dashboard.get("uid")
    if not isinstance(uid, str) or not _UID.match(uid):
        problem("uid", f"{uid!r} is not a Grafana uid (1-40 letters, digits, - or _)")
    if not dashboard.get("title"):
        problem("title", "missing")

    defined = {str(v.get("name")) for v in (dashboard.get("templating") or {}).get("list") or []}
    datasource_variables = {
        str(v.get("name"))
        for v in (dashboard.get("templating") or {}).get("list") or []
        if v.get("type") == "datasource"
    }

    seen_ids: dict[int, str] = {}
    for panel in all_panels(dashboard.get("panels") or []):
        title = repr(panel.get("title", ""))
        panel_id = panel.get("id")
        if not isinstance(panel_id, int):
            problem(f"panel {title}", "has no integer id")
        elif panel_id in seen_ids:
            problem(f"panel {panel_id} {title}", f"duplicate panel id (also {seen_ids[panel_id]})")
        else:
            seen_ids[panel_id] = title
        if "gridPos" not in panel:
            problem(f"panel {panel_id} {title}", "has no gridPos")
        if panel.get("type") != "row" and not panel.get("targets"):
            problem(f"panel {panel_id} {title}", "has no queries")

    for where, ref in _datasource_refs(dashboard):
        ds_uid = _datasource_uid(ref)
        if ds_uid is None:
            problem(where, "no data source (give {'type': ..., 'uid': ...})")
        elif variables_in(ds_uid):
            missing = variables_in(ds_uid) - datasource_variables
            if missing:
                problem(where, f"data source variable ${sorted(missing)[0]} is not defined")
        elif ds_uid not in datasources and ds_uid not in BUILTIN_DATASOURCES:
            known = ", ".join(sorted(datasources))
            problem(where, f"data source uid {ds_uid!r} is not provisioned (known: {known})")

    for where, text in _queries(dashboard):
        for variable in sorted(variables_in(text) - defined - BUILTIN_VARIABLES):
            problem(where, f"uses ${variable}, which is not a variable of this dashboard")
    return problems


def check_folder(folder: Path) -> list[Problem]:
    """Every problem of every dashboard in ``folder``, including uids shared between files."""
    problems: list[Problem] = []
    datasources = provisioned_datasource_uids(folder)
    uids: dict[str, str] = {}
    files = dashboard_files(folder)
    if not files:
        return [Problem(str(folder), "", "no *.json dashboards")]
    for path in files:
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(Problem(path.name, "", f"not valid JSON: {exc}"))
            continue
        if not isinstance(dashboard, dict):
            problems.append(Problem(path.name, "", "not a JSON object"))
            continue
        problems.extend(check_dashboard(path.name, dashboard, datasources))
        uid = dashboard.get("uid")
        if isinstance(uid, str):
            if uid in uids:
                problems.append(
                    Problem(path.name, "uid", f"duplicate dashboard uid {uid!r} (also {uids[uid]})")
                )
            else:
                uids[uid] = path.name
    return problems
