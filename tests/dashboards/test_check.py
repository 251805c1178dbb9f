"""``kordon dashboards check`` accepts the shipped dashboards and names what is wrong in a
broken copy; the committed JSON is what the Python definitions generate."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import composition.cli as kordon_cli
from dashboards.build import stale
from dashboards.check import check_folder, variables_in
from dashboards.locate import dashboards_dir

Run = Callable[..., int]


@pytest.fixture
def kordon(monkeypatch: pytest.MonkeyPatch) -> Run:
    for name in list(os.environ):
        if name.startswith("KORDON_"):
            monkeypatch.delenv(name)
    return lambda *args: kordon_cli.main(list(args))


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    folder = tmp_path / "dashboards"
    shutil.copytree(dashboards_dir(), folder)
    return folder


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    dashboard = json.loads(path.read_text())
    change(dashboard)
    path.write_text(json.dumps(dashboard))


def test_shipped_dashboards_pass(kordon: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert kordon("dashboards", "check") == 0
    assert "4 dashboards in" in capsys.readouterr().out


def test_committed_json_is_what_the_definitions_generate() -> None:
    assert stale(dashboards_dir()) == [], "run: python -m dashboards.build"


def test_duplicate_uid_and_undefined_variable_are_named(
    kordon: Run, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(copy / "radio.json", lambda d: d.update(uid="kordon-scanners"))

    def undefined_variable(dashboard: dict[str, Any]) -> None:
        target = dashboard["panels"][1]["targets"][0]
        target["query"] = target["query"].replace("$site", "$sector")

    _edit(copy / "ups.json", undefined_variable)
    assert kordon("dashboards", "check", "--dir", str(copy)) == 1
    err = capsys.readouterr().err
    assert "scanners.json: uid: duplicate dashboard uid 'kordon-scanners' (also radio.json)" in err
    assert "ups.json: panel 2 'Charge' target A: uses $sector, which is not a variable" in err
    assert "2 problem(s)" in err


def test_duplicate_panel_id_and_unknown_datasource_are_named(copy: Path) -> None:
    def break_it(dashboard: dict[str, Any]) -> None:
        dashboard["panels"][1]["id"] = dashboard["panels"][0]["id"]
        dashboard["panels"][2]["targets"][0]["datasource"] = {"type": "influxdb", "uid": "nope"}
        dashboard["panels"].append(
            {
                "type": "row",
                "title": "r",
                "gridPos": {},
                "panels": [
                    {
                        "id": 99,
                        "title": "nested",
                        "gridPos": {},
                        "datasource": {"uid": "kordon-influxdb"},
                        "targets": [{"refId": "A", "query": "SELECT 1 FROM x WHERE [[ghost]]"}],
                    }
                ],
                "id": 98,
            }
        )

    _edit(copy / "scanners.json", break_it)
    messages = [str(problem) for problem in check_folder(copy)]
    assert any("duplicate panel id" in m for m in messages), messages
    assert any("data source uid 'nope' is not provisioned" in m for m in messages), messages
    assert any("panel 99 'nested'" in m and "$ghost" in m for m in messages), messages
    assert len(messages) == 3, messages


def test_invalid_json_is_reported_not_raised(copy: Path) -> None:
    (copy / "overview.json").write_text("{not json")
    messages = [str(problem) for problem in check_folder(copy)]
    assert messages and messages[0].startswith("overview.json: not valid JSON")


def test_missing_folder_exits_2(kordon: Run, tmp_path: Path) -> None:
    assert kordon("dashboards", "check", "--dir", str(tmp_path / "absent")) == 2


def test_variable_syntaxes() -> None:
    assert variables_in('"site" =~ /^$site$/ AND ${device:regex} [[kind]] $__interval') == {
        "site",
        "device",
        "kind",
        "__interval",
    }
