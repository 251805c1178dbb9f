"""Real HTTP servers on loopback, in the test's own process: the base of the test kit's
stand-ins (the webhook receiver, the file server, the Grafana API of the dashboards tests).

A :class:`LoopbackServer` listens on a free 127.0.0.1 port (or the one it is given) with
the standard library's threaded server, hands every request to :meth:`~LoopbackServer.answer`
and can be stopped and started again on the same port (``HTTPServer`` reuses the address).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from testkit.servers import free_port


class Handler(BaseHTTPRequestHandler):
    """Hands each request to the server's owner (see :meth:`LoopbackServer.start`)."""

    owner: LoopbackServer

    def _answer(self) -> None:
        self.owner.answer(self)

    def body(self) -> bytes:
        """The request's body (empty without a ``Content-Length``)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, body: bytes = b"", content_type: str | None = None) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *_args: object) -> None:  # quiet test output
        pass


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1; subclasses answer the :attr:`methods` they serve
    in :meth:`answer` (any other method gets 501), holding :attr:`lock` for shared state."""

    methods: tuple[str, ...] = ("GET",)

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, request: Handler) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        answers = {f"do_{method}": Handler._answer for method in self.methods}
        handler = type("Handler", (Handler,), {"owner": self, **answers})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
