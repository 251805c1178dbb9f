"""Idempotent upload of the data source, folder and dashboards through Grafana's HTTP API.

Why compare before writing: every ``POST /api/dashboards/db`` creates a new dashboard version
in Grafana's history, and a data source update drops its connection pool. A push that runs on
every deployment must therefore write only what differs, and say what it wrote.

Objects are addressed by uid (dashboards and data source), so a push never duplicates them
and survives renames. Objects Grafana provisioned from files are read-only through the API;
they are reported and left alone.

Secrets (the InfluxDB token or password) cannot be compared: Grafana never returns them, only
which secret keys are set. A push sends them when a key is missing; ``force`` re-sends them
(rotate a credential that way).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from dashboards import DATASOURCE_NAME, DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID
from dashboards.locate import dashboard_files
from kordon.storage.influx import InfluxTarget

Json = dict[str, Any]

# Keys Grafana adds to a stored dashboard; they are not part of what we define.
_SERVER_KEYS = ("id", "version")
_DATASOURCE_KEYS = ("name", "type", "access", "url", "user", "basicAuth", "isDefault")


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Change:
    kind: str  # datasource, folder, dashboard
    uid: str
    title: str
    action: Action
    detail: str = ""

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} {self.uid} {self.title!r}: {self.action}{detail}"


@dataclass(frozen=True)
class InfluxSource:
    """What Grafana needs to query Kordon's InfluxDB (as Grafana's network sees it)."""

    url: str
    database: str
    token: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_settings(cls, influx: Any, url: str | None = None) -> InfluxSource:
        """From ``influx`` settings, at ``url`` if Grafana reaches InfluxDB by another name."""
        target = InfluxTarget.from_settings(influx, url)
        return cls(
            url=target.url,
            database=target.database,
            token=target.token,
            username=target.username,
            password=target.password,
        )

    def datasource(self) -> Json:
        """Grafana data source body (InfluxQL); a token travels as a custom header."""
        json_data: Json = {
            "version": "InfluxQL",
            "dbName": self.database,
            "httpMode": "POST",
            "timeInterval": "10s",
        }
        secure: Json = {}
        if self.token:
            json_data["httpHeaderName1"] = "Authorization"
            secure["httpHeaderValue1"] = f"Token {self.token}"
        if self.password:
            secure["password"] = self.password
        body: Json = {
            "uid": DATASOURCE_UID,
            "name": DATASOURCE_NAME,
            "type": "influxdb",
            "access": "proxy",
            "url": self.url,
            "user": self.username or "",
            "basicAuth": False,
            "isDefault": True,
            "jsonData": json_data,
        }
        if secure:
            body["secureJsonData"] = secure
        return body


def load_dashboards(folder: Path) -> list[Json]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in dashboard_files(folder)]


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) == 404


def _comparable(dashboard: Json) -> Json:
    return {key: value for key, value in dashboard.items() if key not in _SERVER_KEYS}


class Pusher:
    """Pushes to one Grafana through a ``grafana_client.GrafanaApi``."""

    def __init__(
        self,
        api: Any,
        *,
        folder_uid: str = FOLDER_UID,
        folder_title: str = FOLDER_TITLE,
        force: bool = False,
        dry_run: bool = False,
        report: Callable[[Change], None] = print,
    ) -> None:
        self.api = api
        self.folder_uid = folder_uid
        self.folder_title = folder_title
        self.force = force
        self.dry_run = dry_run
        self.report = report
        self.changes: list[Change] = []

    def _record(self, change: Change) -> None:
        self.changes.append(change)
        self.report(change)

    def _get(self, fetch: Callable[[], Json]) -> Json | None:
        from grafana_client.client import GrafanaClientError

        try:
            return fetch()
        except GrafanaClientError as exc:
            if _is_not_found(exc):
                return None
            raise

    # ------------------------------------------------------------------ data source
    def datasource(self, desired: Json) -> Change:
        uid = desired["uid"]
        current = self._get(lambda: self.api.datasource.get_datasource_by_uid(uid))
        title = desired["name"]
        if current is None:
            if not self.dry_run:
                self.api.datasource.create_datasource(desired)
            return self._done(Change("datasource", uid, title, Action.CREATED))
        differences = self._datasource_differences(current, desired)
        if not differences:
            return self._done(Change("datasource", uid, title, Action.UNCHANGED))
        if current.get("readOnly"):
            return self._done(
                Change(
                    "datasource",
                    uid,
                    title,
                    Action.SKIPPED,
                    f"provisioned from a file, read-only; differs in {', '.join(differences)}",
                )
            )
        body = dict(desired)
        # Keep settings an operator added in the UI; ours win where both set a key.
        body["jsonData"] = {**(current.get("jsonData") or {}), **desired["jsonData"]}
        if not self.dry_run:
            self.api.datasource.update_datasource_by_uid(uid, body)
        return self._done(Change("datasource", uid, title, Action.UPDATED, ", ".join(differences)))

    def _datasource_differences(self, current: Json, desired: Json) -> list[str]:
        differences = [
            key
            for key in _DATASOURCE_KEYS
            if key in desired and current.get(key, "") != desired[key]
        ]
        current_json = current.get("jsonData") or {}
        differences += [
            f"jsonData.{key}"
            for key, value in desired["jsonData"].items()
            if current_json.get(key) != value
        ]
        secrets_set = {key for key, on in (current.get("secureJsonFields") or {}).items() if on}
        wanted = set(desired.get("secureJsonData") or {})
        if self.force and wanted:
            differences.append("secrets (forced)")
        elif wanted - secrets_set:
            differences += [f"secureJsonData.{key}" for key in sorted(wanted - secrets_set)]
        return differences

    # ------------------------------------------------------------------ folder
    def folder(self) -> Change:
        current = self._get(lambda: self.api.folder.get_folder(self.folder_uid))
        if current is not None:
            return self._done(
                Change("folder", self.folder_uid, self.folder_title, Action.UNCHANGED)
            )
        if not self.dry_run:
            self.api.folder.create_folder(self.folder_title, uid=self.folder_uid)
        return self._done(Change("folder", self.folder_uid, self.folder_title, Action.CREATED))

    # ------------------------------------------------------------------ dashboards
    def dashboard(self, desired: Json) -> Change:
        uid = desired["uid"]
        title = desired.get("title", "")
        current = self._get(lambda: self.api.dashboard.get_dashboard(uid))
        if current is not None:
            meta = current.get("meta") or {}
            same_folder = meta.get("folderUid", "") == self.folder_uid
            same = _comparable(current.get("dashboard") or {}) == _comparable(desired)
            if same and same_folder:
                return self._done(Change("dashboard", uid, title, Action.UNCHANGED))
            if meta.get("provisioned"):
                return self._done(
                    Change("dashboard", uid, title, Action.SKIPPED, "provisioned from a file")
                )
        body = {
            "dashboard": {**_comparable(desired), "id": None},
            "folderUid": self.folder_uid,
            "overwrite": True,
            "message": "kordon dashboards push",
        }
        if not self.dry_run:
            self.api.dashboard.update_dashboard(body)
        if current is None:
            return self._done(Change("dashboard", uid, title, Action.CREATED))
        detail = "moved to folder" if same else "content"
        return self._done(Change("dashboard", uid, title, Action.UPDATED, detail))

    def _done(self, change: Change) -> Change:
        self._record(change)
        return change

    def push(self, datasource: Json, dashboards: list[Json]) -> list[Change]:
        self.datasource(datasource)
        self.folder()
        for dashboard in dashboards:
            self.dashboard(dashboard)
        return self.changes


def connect(url: str, token: str | None, timeout: float = 10.0) -> Any:
    """A ``GrafanaApi`` for ``url``; a token, or user:password in the URL, authenticates."""
    from grafana_client import GrafanaApi

    return GrafanaApi.from_url(url, credential=token or None, timeout=timeout)


def health(api: Any) -> Json:
    """``GET /api/health``: fails early, with Grafana's version, before anything is written."""
    return api.client.GET("/health")
