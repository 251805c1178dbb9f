"""Real notification receivers for tests: an HTTP webhook server and an SMTP server.

Both record what they receive. The webhook server can be stopped and started again on the
same port, which is how the outbox tests take a receiver down.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.loopback import Handler, LoopbackServer
from testkit.servers import free_port


@dataclass(frozen=True)
class WebhookRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = 0.0  # time.monotonic() on arrival


class WebhookReceiver(LoopbackServer):
    """Records every POST (path, headers, JSON body, arrival) and answers 200."""

    methods = ("POST",)

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.requests: list[WebhookRequest] = []

    def url(self, path: str = "/hook") -> str:
        return super().url(path)

    def answer(self, request: Handler) -> None:
        received = WebhookRequest(request.path, dict(request.headers.items()),
                                  json.loads(request.body()), time.monotonic())
        with self.lock:
            self.requests.append(received)
        request.reply(200)

    def received(self, path: str | None = None) -> list[WebhookRequest]:
        """Every request received so far (to ``path``), in order of arrival."""
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.received(path)]

    def arrivals(self, path: str | None = None) -> list[float]:
        """``time.monotonic()`` of every request's arrival (to ``path``)."""
        return [r.at for r in self.received(path)]

    def alerts(self, path: str | None = None) -> list[tuple[str, str, str]]:
        """(alertname, device or site, status) of every alert in every request."""
        return [
            (a["labels"]["alertname"], a["labels"].get("device", a["labels"].get("site")),
             a["status"])
            for body in self.bodies(path)
            for a in body["alerts"]
        ]


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


class SmtpReceiver:
    """aiosmtpd with STARTTLS required and AUTH LOGIN/PLAIN for one user."""

    def __init__(self, folder: Path, user: str = "kordon", password: str = "s3cret") -> None:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.port = free_port()
        self.messages: list[Any] = []
        self.user, self.password = user, password
        cert, key = self_signed_cert(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        receiver = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                from email import message_from_bytes
                from email.policy import default

                receiver.messages.append(message_from_bytes(envelope.content, policy=default))
                return "250 OK"

        def authenticator(_server: Any, _session: Any, _envelope: Any, mechanism: str,
                          data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and \
                data.password.decode() == password
            return AuthResult(success=ok)

        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, tls_context=context,
            require_starttls=True, authenticator=authenticator, auth_require_tls=True,
        )

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
