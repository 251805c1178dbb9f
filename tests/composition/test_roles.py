"""Which settings each role of a ``kordon run`` process gets (``composition/roles.py``)."""

from __future__ import annotations

from composition.roles import role_settings
from kordon.config import Settings


def _with_id(client_id: str | None) -> Settings:
    return Settings.model_validate({"mqtt": {"client_id": client_id}})


def test_the_collector_and_the_alerts_role_of_one_process_get_a_session_each() -> None:
    settings = _with_id("chop-1")
    together = ["collector", "alerts", "api"]
    ids = {name: role_settings(name, settings, together).mqtt.client_id_for(name)
           for name in together}
    assert ids["collector"] == "chop-1-collector" and ids["alerts"] == "chop-1-alerts"
    assert ids["api"] == "chop-1"  # the API adds a random suffix of its own (api/live.py)


def test_a_role_alone_or_without_an_explicit_id_is_unchanged() -> None:
    settings = _with_id("chop-1")
    assert role_settings("collector", settings, ["collector"]) is settings
    assert role_settings("collector", settings, ["collector", "api"]) is settings
    default = _with_id(None)
    assert role_settings("alerts", default, ["collector", "alerts"]) is default
    assert default.mqtt.client_id_for("alerts").startswith("kordon-alerts-")
