"""A real HTTP file server on loopback whose answers a test can change between polls."""

from __future__ import annotations

from testkit.loopback import Handler, LoopbackServer


class FileServer(LoopbackServer):
    """Serves ``files[path] = (status, body)``; counts requests per path."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, tuple[int, bytes]] = {}
        self.hits: dict[str, int] = {}

    def put(self, path: str, body: bytes, status: int = 200) -> None:
        with self.lock:
            self.files[path] = (status, body)

    def answer(self, request: Handler) -> None:
        with self.lock:
            self.hits[request.path] = self.hits.get(request.path, 0) + 1
            status, body = self.files.get(request.path, (404, b"not found"))
        request.reply(status, body)
