"""Email through a real SMTP server (aiosmtpd on loopback): what the shop's `SmtpEmail` hands
over (envelope, headers, text), authentication, a refused recipient as 503 `Unavailable`, and
an unreachable server retried once, then refused the same way."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kirana.api.devstack import free_port
from kirana.api.errors import Unavailable
from kirana.api.notify.providers import SmtpEmail, build
from kirana.api.settings import Settings

USER, PASSWORD = "shop-mailer", "mailer-secret-123"
# AUTH without TLS, on loopback only: aiosmtpd warns of it, rightly, everywhere else.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Mailbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], Message]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_required=True,
        auth_require_tls=False,  # loopback only, for the test
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def _settings(port: int, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "email_provider": "smtp",
        "email_from_address": "Kirana <no-reply@shop.example>",
        "email_smtp_host": "127.0.0.1",
        "email_smtp_port": port,
        "email_smtp_username": USER,
        "email_smtp_password": PASSWORD,
        "email_tls": "none",
        "email_timeout_s": 5,
    }
    return Settings(**(values | extra))


async def test_mail_reaches_the_smtp_server_with_its_headers_and_text(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    notifier = build(_settings(port))
    assert isinstance(notifier.email, SmtpEmail)
    message_id = await notifier.email.send(to="asha@example.com", subject="Your code", text="Code: 482913")
    [(sender, rcpts, msg)] = box.received
    assert sender == "no-reply@shop.example" and rcpts == ["asha@example.com"]
    assert msg["Subject"] == "Your code" and msg["From"] == "Kirana <no-reply@shop.example>"
    assert msg["Message-ID"] == message_id and message_id.endswith("@shop.example>")
    assert msg["Date"]
    assert msg.get_payload(decode=True).decode().strip() == "Code: 482913"  # type: ignore[union-attr]


async def test_a_refused_recipient_or_a_bad_password_is_unavailable(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    email = SmtpEmail(_settings(port).email)
    with pytest.raises(Unavailable):
        await email.send(to="nobody@example.com", subject="x", text="y")
    wrong = SmtpEmail(_settings(port, email_smtp_password="not-the-password").email)
    with pytest.raises(Unavailable):
        await wrong.send(to="asha@example.com", subject="x", text="y")
    assert box.received == []


async def test_an_unreachable_server_is_unavailable() -> None:
    email = SmtpEmail(_settings(free_port(), email_timeout_s=2).email)
    with pytest.raises(Unavailable):
        await email.send(to="asha@example.com", subject="x", text="y")


def test_smtp_needs_a_host_and_known_tls_modes() -> None:
    with pytest.raises(ValueError, match="KIRANA_EMAIL_SMTP_HOST"):
        Settings(environment="test", email_provider="smtp")
    with pytest.raises(ValueError, match="starttls, tls or none"):
        Settings(environment="test", email_tls="maybe")
