"""Notification sinks: a generic JSON webhook and e-mail over SMTP.

The webhook body carries the incident's fields and a ``text`` line, which is all Slack's and
Teams' incoming webhooks show; ``dedupe_key`` lets a PagerDuty-style receiver fold a message
sent again after a timeout into the first. E-mail goes through the standard library's
smtplib in a thread (one short connection per message). A sink's URL, headers and login are
secrets: an error from a sink is reported as text with them replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal

import httpx

from app.configuration.monitoring import SmtpSink, WebhookSink

Status = Literal["firing", "resolved", "test"]
ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True)
class Message:
    status: Status
    kind: str
    connection: str
    flow: str
    summary: str
    incident_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    url: str | None = None

    @property
    def title(self) -> str:
        what = f"{self.kind} {self.connection}" + (f"/{self.flow}" if self.flow else "")
        return f"[{self.status.upper()}] {what}"

    @property
    def text(self) -> str:
        line = f"{self.title}: {self.summary}"
        return f"{line} {self.url}" if self.url else line


def webhook_body(message: Message) -> dict[str, Any]:
    return {
        "status": message.status,
        "kind": message.kind,
        "connection": message.connection,
        "flow": message.flow or None,
        "summary": message.summary,
        "details": message.details,
        "opened_at": message.opened_at.isoformat() if message.opened_at else None,
        "resolved_at": message.resolved_at.isoformat() if message.resolved_at else None,
        "url": message.url,
        "incident_id": message.incident_id,
        "dedupe_key": f"erp-gateway:incident:{message.incident_id}"
        if message.incident_id is not None
        else None,
        "text": message.text,
    }


def email_of(message: Message, sink: SmtpSink) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = f"erp-gateway {message.title}"
    mail["From"] = sink.sender
    mail["To"] = ", ".join(sink.to)
    lines = [message.summary, ""]
    if message.opened_at:
        lines.append(f"opened:   {message.opened_at.isoformat()}")
    if message.resolved_at:
        lines.append(f"resolved: {message.resolved_at.isoformat()}")
    for key, value in message.details.items():
        lines.append(f"{key}: {value}")
    if message.url:
        lines += ["", message.url]
    mail.set_content("\n".join(lines) + "\n")
    return mail


class SinkError(Exception):
    """A sink refused or could not be reached; the text holds none of its secrets."""


def secrets_of(sink: WebhookSink | SmtpSink) -> list[str]:
    if isinstance(sink, WebhookSink):
        values = [sink.url.get_secret_value()]
        values += [v.get_secret_value() for v in sink.headers.values()]
    else:
        values = [s.get_secret_value() for s in (sink.username, sink.password) if s is not None]
    return [v for v in values if v]


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return " ".join(text.split())[:ERROR_TEXT_LIMIT]


async def send(sink: WebhookSink | SmtpSink, message: Message) -> None:
    """Send ``message`` to ``sink``; SinkError (redacted) when it did not take it."""
    try:
        if isinstance(sink, WebhookSink):
            await _post(sink, message)
        else:
            await asyncio.wait_for(
                asyncio.to_thread(_mail, sink, email_of(message, sink)),
                timeout=sink.timeout_seconds * 3,
            )
    except SinkError as exc:
        raise SinkError(redact(str(exc), secrets_of(sink))) from None
    except Exception as exc:  # network, TLS, SMTP replies: all become the same readable error
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise SinkError(redact(text, secrets_of(sink))) from None


async def _post(sink: WebhookSink, message: Message) -> None:
    headers = {name: value.get_secret_value() for name, value in sink.headers.items()}
    async with httpx.AsyncClient(
        timeout=sink.timeout_seconds, trust_env=False, follow_redirects=False
    ) as http:
        answer = await http.post(
            sink.url.get_secret_value(), json=webhook_body(message), headers=headers
        )
    if not answer.is_success:
        body = answer.text[:200]
        raise SinkError(f"HTTP {answer.status_code}" + (f": {body}" if body else ""))


def _mail(sink: SmtpSink, mail: EmailMessage) -> None:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if sink.security == "tls":
        smtp = smtplib.SMTP_SSL(sink.host, sink.port, timeout=sink.timeout_seconds, context=context)
    else:
        smtp = smtplib.SMTP(sink.host, sink.port, timeout=sink.timeout_seconds)
    with smtp:
        if sink.security == "starttls":
            smtp.starttls(context=context)
        if sink.username is not None and sink.password is not None:
            smtp.login(sink.username.get_secret_value(), sink.password.get_secret_value())
        smtp.send_message(mail)
