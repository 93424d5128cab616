"""E-mail notifications against a real SMTP server on loopback (aiosmtpd): one message per
incident change, the login from ${VAR}, and a refused login reported without the password."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.incidents.job import run_incidents
from app.models import utcnow
from tests.integration.test_incidents import (
    breaker,
    config_with,
    gateway_rt,
    incidents,
    notices_of,
)
from tests.support.processes import free_port

__all__ = ["gateway_rt"]

PASSWORD = "smtp-pass-9f3e"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=_login,
        auth_require_tls=False,  # loopback only; production sinks use STARTTLS or TLS
    )
    controller.start()
    yield port, box
    controller.stop()


def smtp_sink(port: int, timeout: float = 10) -> str:
    return f"""  notifications:
    sinks:
      - type: smtp
        name: ops-mail
        host: 127.0.0.1
        port: {port}
        security: none
        username: gateway
        password: "${{SMTP_PASSWORD}}"
        sender: gateway@example.com
        to: [ops@example.com, oncall@example.com]
        timeout_seconds: {timeout}
"""


async def test_one_mail_when_raised_and_one_when_resolved(
    gateway_rt: Any, smtp_server: tuple[int, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, box = smtp_server
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n" + smtp_sink(port)))
    now = utcnow()
    await breaker(rt, "open", now - timedelta(minutes=11))
    await run_incidents(rt, now)
    await run_incidents(rt, now + timedelta(minutes=1))
    [mail] = box.messages
    assert mail["Subject"] == "erp-gateway [FIRING] breaker_open erp"
    assert mail["From"] == "gateway@example.com"
    assert mail["To"] == "ops@example.com, oncall@example.com"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"the circuit breaker of erp has been open for over 10 minutes" in body
    await breaker(rt, "closed", now + timedelta(minutes=2))
    await run_incidents(rt, now + timedelta(minutes=3))
    await run_incidents(rt, now + timedelta(minutes=4))
    assert [m["Subject"] for m in box.messages] == [
        "erp-gateway [FIRING] breaker_open erp",
        "erp-gateway [RESOLVED] breaker_open erp",
    ]


async def test_a_refused_login_is_retried_and_reported_without_the_password(
    gateway_rt: Any, smtp_server: tuple[int, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, box = smtp_server
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-" + PASSWORD)
    rt = await gateway_rt(config_with("  breaker_open_minutes: 10\n" + smtp_sink(port, 2)))
    now = utcnow()
    await breaker(rt, "open", now - timedelta(minutes=11))
    await run_incidents(rt, now)
    [notice] = await notices_of(rt)
    assert notice.state == "pending" and notice.attempts == 1
    assert notice.last_error is not None and notice.last_error.startswith("SMTP")
    assert PASSWORD not in notice.last_error
    assert box.messages == []
    assert [i.status for i in await incidents(rt)] == ["open"]
