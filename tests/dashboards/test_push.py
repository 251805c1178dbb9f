"""``kordon dashboards push`` speaks Grafana's HTTP API and writes only what changed.

Grafana itself is not installable here (no Debian package, no container runtime), so the test
runs a real loopback HTTP server (:class:`testkit.loopback.LoopbackServer`) that implements
the part of Grafana's API the push uses, with Grafana's status codes and response shapes:
``GET /api/health``, data sources by uid (``GET``/``PUT /api/datasources/uid/{uid}``,
``POST /api/datasources``), folders (``GET /api/folders/{uid}``, ``POST /api/folders``) and
dashboards (``GET /api/dashboards/uid/{uid}``, ``POST /api/dashboards/db``). Like Grafana, it never
returns secrets, only which secret keys are set, and it records every request it receives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import composition.cli as kordon_cli
from dashboards.locate import dashboard_files, dashboards_dir
from testkit.loopback import Handler, LoopbackServer

TOKEN = "glsa_test_token"
WRITES = {"POST", "PUT", "DELETE", "PATCH"}


@dataclass
class Request:
    method: str
    path: str
    body: Any


@dataclass
class GrafanaState:
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class Grafana(LoopbackServer):
    """The part of Grafana's HTTP API the push uses, on a real loopback HTTP server."""

    methods = ("GET", "POST", "PUT", "DELETE")

    def __init__(self) -> None:
        super().__init__()
        self.state = GrafanaState()

    def answer(self, request: Handler) -> None:
        raw = request.body()
        body = json.loads(raw) if raw else None
        with self.lock:
            self.state.requests.append(Request(request.command, request.path, body))
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, reply = 401, {"message": "Unauthorized"}
            else:
                status, reply = _route(self.state, request.command, request.path.split("?")[0],
                                       body)
        request.reply(status, json.dumps(reply).encode(), "application/json")


def _route(state: GrafanaState, method: str, path: str, body: Any) -> tuple[int, Any]:
    parts = path.strip("/").split("/")
    if (method, path) == ("GET", "/api/health"):
        return 200, {"commit": "test", "database": "ok", "version": "11.1.0"}
    if parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
        uid = parts[3]
        current = state.datasources.get(uid)
        if method == "GET":
            return (200, _public(current)) if current else (404, {"message": "not found"})
        if method == "PUT":
            if current is None:
                return 404, {"message": "Data source not found"}
            updated = {**body, "id": current["id"], "version": current["version"] + 1}
            updated.setdefault("secureJsonData", current.get("secureJsonData", {}))
            state.datasources[uid] = updated
            return 200, {"message": "Datasource updated", "datasource": _public(updated)}
    if (method, path) == ("POST", "/api/datasources"):
        if body["uid"] in state.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        stored = {**body, "id": state.new_id(), "version": 1, "readOnly": False}
        state.datasources[body["uid"]] = stored
        return 200, {"message": "Datasource added", "id": stored["id"], "name": body["name"]}
    if parts[:2] == ["api", "folders"]:
        if method == "GET" and len(parts) == 3:
            folder = state.folders.get(parts[2])
            return (200, folder) if folder else (404, {"message": "folder not found"})
        if method == "POST" and len(parts) == 2:
            folder = {"uid": body["uid"], "title": body["title"], "id": state.new_id()}
            state.folders[body["uid"]] = folder
            return 200, folder
    if parts[:3] == ["api", "dashboards", "uid"] and method == "GET":
        stored = state.dashboards.get(parts[3])
        return (200, stored) if stored else (404, {"message": "Dashboard not found"})
    if (method, path) == ("POST", "/api/dashboards/db"):
        dashboard = body["dashboard"]
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in state.folders:
            return 400, {"message": "folder not found"}
        old = state.dashboards.get(dashboard["uid"])
        version = old["dashboard"]["version"] + 1 if old else 1
        dashboard_id = old["dashboard"]["id"] if old else state.new_id()
        saved = {**dashboard, "id": dashboard_id, "version": version}
        state.dashboards[dashboard["uid"]] = {
            "dashboard": saved,
            "meta": {"folderUid": folder_uid, "provisioned": False, "version": version},
        }
        return 200, {
            "id": dashboard_id,
            "uid": dashboard["uid"],
            "status": "success",
            "version": version,
            "url": f"/d/{dashboard['uid']}",
        }
    return 404, {"message": f"no route {method} {path}"}


def _public(datasource: dict[str, Any] | None) -> dict[str, Any] | None:
    """What Grafana returns: never the secrets, only which ones are set."""
    if datasource is None:
        return None
    public = {k: v for k, v in datasource.items() if k != "secureJsonData"}
    public["secureJsonFields"] = {key: True for key in datasource.get("secureJsonData") or {}}
    return public


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    server = Grafana().start()
    yield server.url(""), server.state
    server.stop()


@pytest.fixture
def kordon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Runs ``kordon ...`` in this process with the dashboards commands registered."""
    for name in list(os.environ):
        if name.startswith("KORDON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KORDON_INFLUX_URL", "http://influxdb.internal:8086")
    monkeypatch.setenv("KORDON_INFLUX_DB", "kordon")
    monkeypatch.setenv("KORDON_INFLUX_TOKEN", "kordon:s3cret")
    monkeypatch.setenv("KORDON_DATA_DIR", str(tmp_path / "data"))

    def run(*args: str) -> int:
        return kordon_cli.main(list(args))

    return run


def _writes(state: GrafanaState) -> list[Request]:
    return [r for r in state.requests if r.method in WRITES]


def _push(kordon: Any, url: str, *extra: str) -> int:
    return kordon("dashboards", "push", "--grafana-url", url, "--token", TOKEN, *extra)


def test_first_push_creates_everything_second_changes_nothing(
    grafana: tuple[str, GrafanaState], kordon: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = grafana
    shipped = {json.loads(p.read_text())["uid"] for p in dashboard_files(dashboards_dir())}

    assert _push(kordon, url) == 0
    out = capsys.readouterr().out
    assert state.requests[0].path == "/api/health"
    writes = [(r.method, r.path) for r in _writes(state)]
    assert writes[:2] == [("POST", "/api/datasources"), ("POST", "/api/folders")]
    assert writes[2:] == [("POST", "/api/dashboards/db")] * len(shipped)

    datasource = _writes(state)[0].body
    assert datasource["uid"] == "kordon-influxdb" and datasource["type"] == "influxdb"
    assert datasource["url"] == "http://influxdb.internal:8086"
    assert datasource["jsonData"]["dbName"] == "kordon"
    assert datasource["jsonData"]["version"] == "InfluxQL"
    assert datasource["jsonData"]["httpHeaderName1"] == "Authorization"
    assert datasource["secureJsonData"]["httpHeaderValue1"] == "Token kordon:s3cret"
    for request in _writes(state)[2:]:
        assert request.body["overwrite"] is True and request.body["folderUid"] == "kordon"
        assert request.body["dashboard"]["id"] is None
    assert set(state.dashboards) == shipped
    assert out.count(": created") == 2 + len(shipped)
    assert "secret" not in out  # the token is never printed

    state.requests.clear()
    assert _push(kordon, url) == 0
    out = capsys.readouterr().out
    assert _writes(state) == [], "a second push must not write"
    assert out.count(": unchanged") == 2 + len(shipped)
    assert f"pushed: {2 + len(shipped)} unchanged" in out
    assert all(d["dashboard"]["version"] == 1 for d in state.dashboards.values())


def test_push_updates_only_what_differs(
    grafana: tuple[str, GrafanaState],
    kordon: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, state = grafana
    assert _push(kordon, url) == 0
    folder = tmp_path / "dashboards"
    shutil.copytree(dashboards_dir(), folder)
    ups = folder / "ups.json"
    dashboard = json.loads(ups.read_text())
    dashboard["title"] = "Kordon / UPS detail (edited)"
    ups.write_text(json.dumps(dashboard))
    state.requests.clear()
    capsys.readouterr()

    assert _push(kordon, url, "--dir", str(folder), "--influx-url", "http://10.0.0.5:8086") == 0
    out = capsys.readouterr().out
    writes = [(r.method, r.path) for r in _writes(state)]
    assert writes == [
        ("PUT", "/api/datasources/uid/kordon-influxdb"),
        ("POST", "/api/dashboards/db"),
    ]
    assert _writes(state)[1].body["dashboard"]["uid"] == "kordon-ups"
    assert state.dashboards["kordon-ups"]["dashboard"]["version"] == 2
    assert state.datasources["kordon-influxdb"]["url"] == "http://10.0.0.5:8086"
    assert "datasource kordon-influxdb 'Kordon InfluxDB': updated (url)" in out
    assert "dashboard kordon-ups 'Kordon / UPS detail (edited)': updated (content)" in out


def test_dry_run_writes_nothing(
    grafana: tuple[str, GrafanaState], kordon: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = grafana
    assert _push(kordon, url, "--dry-run") == 0
    assert _writes(state) == []
    assert "would push:" in capsys.readouterr().out


def test_bad_token_fails_with_a_clear_message(
    grafana: tuple[str, GrafanaState], kordon: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = grafana
    code = kordon("dashboards", "push", "--grafana-url", url, "--token", "wrong")
    assert code == 1
    assert "refused the credentials (401)" in capsys.readouterr().err
    assert _writes(state) == []


def test_push_refuses_broken_dashboards(
    grafana: tuple[str, GrafanaState],
    kordon: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, state = grafana
    folder = tmp_path / "dashboards"
    shutil.copytree(dashboards_dir(), folder)
    radio = json.loads((folder / "radio.json").read_text())
    radio["uid"] = "kordon-ups"
    (folder / "radio.json").write_text(json.dumps(radio))
    assert _push(kordon, url, "--dir", str(folder)) == 1
    assert "duplicate dashboard uid 'kordon-ups'" in capsys.readouterr().err
    assert state.requests == []


def test_parser_registers_both_commands() -> None:
    from dashboards.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboards", "push", "--grafana-url", "http://g:3000"])
    assert callable(args.handler) and args.folder_uid == "kordon"
    assert callable(parser.parse_args(["dashboards", "check"]).handler)
