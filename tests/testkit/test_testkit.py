import httpx

from testkit import InfluxServer, MosquittoServer
from testkit.alertmanager import conflicting


def test_servers_answer(mosquitto: MosquittoServer, influxdb: InfluxServer) -> None:
    assert mosquitto.ready()
    assert httpx.get(f"{influxdb.url}/ping").status_code == 204


def test_alertmanager_conflicts_are_told_from_duplicates() -> None:
    """A repeat right after another node's different state is Alertmanager's own conflict
    (prometheus/alertmanager#2447); a repeat from the node that sent the state before it,
    or of the state just sent, is a duplicate page."""

    def body(node: str, status: str) -> dict[str, object]:
        return {"groupKey": "g", "status": status, "externalURL": node,
                "alerts": [{"fingerprint": "f", "status": status}]}

    follower_late = [body("a", "firing"), body("b", "resolved"), body("a", "firing"),
                     body("b", "resolved")]
    assert conflicting(follower_late) == [2, 3]
    flap = [body("a", "firing"), body("a", "resolved"), body("a", "firing")]
    assert conflicting(flap) == []
    twice = [body("a", "firing"), body("b", "firing")]
    assert conflicting(twice) == []
