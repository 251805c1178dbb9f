import httpx

from testkit import InfluxServer, MosquittoServer


def test_servers_answer(mosquitto: MosquittoServer, influxdb: InfluxServer) -> None:
    assert mosquitto.ready()
    assert httpx.get(f"{influxdb.url}/ping").status_code == 204
