"""Email receiver over SMTP (STARTTLS or implicit TLS, optional AUTH), plain text.

The subject names the status, the site and the alerts; the body lists each alert's summary
(with its numbers) and description, so the page is readable on any phone without HTML.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from pydantic import Field, field_validator

from alerts.notify.base import DeliveryError, Notifier, ReceiverConfig
from kordon.durations import Duration


class EmailConfig(ReceiverConfig):
    """``email: {to: [...], from: ..., smarthost: host:port, username, password, ...}``."""

    kind: ClassVar[str] = "email"
    secrets: ClassVar[frozenset[str]] = frozenset({"password"})

    to: list[str] = Field(..., min_length=1)
    from_: str = Field("kordon@localhost", alias="from")
    smarthost: str = Field(..., description="host:port of the SMTP server")
    username: str | None = None
    password: str | None = None
    starttls: bool = Field(True, description="upgrade with STARTTLS (required when offered)")
    tls: bool = Field(False, description="implicit TLS (port 465) instead of STARTTLS")
    verify_tls: bool = True
    timeout: Duration = 10.0

    @field_validator("smarthost")
    @classmethod
    def _smarthost(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. smtp.example.org:587")
        return value

    def notifier(self) -> Notifier:
        return EmailNotifier(self)


def render(payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of one notification."""
    alerts = payload["alerts"]
    firing = [a for a in alerts if a["status"] == "firing"]
    resolved = [a for a in alerts if a["status"] == "resolved"]
    where = ", ".join(f"{k}={v}" for k, v in sorted(payload.get("groupLabels", {}).items()))
    names = sorted({a["labels"].get("alertname", "") for a in alerts})
    status = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    prefix = "[ESCALATED] " if payload.get("escalation") else ""
    subject = f"{prefix}[{status}] {where or 'kordon'}: {', '.join(names)}"
    lines = []
    if payload.get("escalation"):
        lines += ["Nobody has acknowledged this critical alert yet: it is escalated to you.", ""]
    for title, group in (("Firing", firing), ("Resolved", resolved)):
        if not group:
            continue
        lines.append(f"{title}:")
        for alert in group:
            labels = alert["labels"]
            notes = alert["annotations"]
            lines.append(f"  * {notes.get('summary') or labels.get('alertname')}")
            if notes.get("description"):
                lines.append(f"    {notes['description']}")
            since = alert["startsAt"][:19].replace("T", " ")
            ended = (
                f", resolved {alert['endsAt'][:19].replace('T', ' ')} UTC"
                if alert["status"] == "resolved" else ""
            )
            lines.append(
                f"    {labels.get('alertname')} severity={labels.get('severity', '')} "
                f"since {since} UTC{ended} (fingerprint {alert['fingerprint']})"
            )
        lines.append("")
    if payload.get("externalURL"):
        lines.append(f"Kordon: {payload['externalURL']}")
    return subject, "\n".join(lines).rstrip() + "\n"


class EmailNotifier:
    def __init__(self, settings: EmailConfig) -> None:
        self.settings = settings
        host, _, port = settings.smarthost.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def send(self, payload: dict[str, Any], idempotency_key: str) -> None:
        s = self.settings
        subject, body = render(payload)
        message = EmailMessage()
        message["From"] = s.from_
        message["To"] = ", ".join(s.to)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(idstring=idempotency_key[:16], domain="kordon")
        message["X-Kordon-Idempotency-Key"] = idempotency_key
        message.set_content(body)
        try:
            if s.tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=s.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=s.timeout)
            with smtp:
                smtp.ehlo()
                if not s.tls and s.starttls:
                    if smtp.has_extn("starttls"):
                        smtp.starttls(context=self._context())
                        smtp.ehlo()
                    elif s.username:
                        raise DeliveryError(
                            f"{s.smarthost} offers no STARTTLS; refusing to send the password "
                            "in clear (set starttls: false only on a trusted network)",
                            retryable=False,
                        )
                if s.username:
                    smtp.login(s.username, s.password or "")
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP authentication failed: {exc}", retryable=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        pass
