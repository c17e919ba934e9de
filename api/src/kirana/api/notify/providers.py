"""Providers that deliver SMS and email, behind small interfaces the flows depend on.

`build(settings)` picks them once at start-up (the app's lifespan stores the result in
`app.state.notifier`). The console providers log and keep the last messages in memory for
development and tests; `HttpSms` posts to a real SMS gateway (Indian DLT rules: a registered
sender id, entity id and template id travel with every message); `SmtpEmail` hands mail to an
SMTP server (the shop's relay or a provider's submission port), with the standard library's
client in a thread, so no extra dependency sits between the shop and its mail.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import httpx

from kirana.api import metrics
from kirana.api.errors import Unavailable
from kirana.api.settings import EmailSettings, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    to: str
    text: str
    subject: str = ""
    template_id: str = ""


class SmsProvider(Protocol):
    async def send(self, *, to: str, text: str) -> str:
        """Deliver `text` to the E.164 number `to`; return the provider's message id."""
        ...

    async def aclose(self) -> None: ...


class EmailProvider(Protocol):
    async def send(self, *, to: str, subject: str, text: str) -> str: ...

    async def aclose(self) -> None: ...


@dataclass
class ConsoleSms:
    """Development: log the message (codes included) and remember the last ones."""

    sent: deque[Message] = field(default_factory=lambda: deque(maxlen=100))

    async def send(self, *, to: str, text: str) -> str:
        self.sent.append(Message(to=to, text=text))
        log.warning("sms (console provider, not delivered)", extra={"to": to, "text": text})
        return f"console-{len(self.sent)}"

    async def aclose(self) -> None:
        return None


@dataclass
class ConsoleEmail:
    sent: deque[Message] = field(default_factory=lambda: deque(maxlen=100))

    async def send(self, *, to: str, subject: str, text: str) -> str:
        self.sent.append(Message(to=to, text=text, subject=subject))
        log.warning("email (console provider, not delivered)", extra={"to": to, "subject": subject})
        return f"console-{len(self.sent)}"

    async def aclose(self) -> None:
        return None


class HttpSms:
    """A JSON-over-HTTPS SMS gateway: POST {url} with a bearer token.

    Request body: {"sender", "to", "text", "dlt_entity_id", "dlt_template_id"}; a 2xx answer
    with {"id": ...} means accepted. One retry on connection errors and 5xx answers.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        sender: str,
        entity_id: str,
        template_id: str,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.sender = sender
        self.entity_id = entity_id
        self.template_id = template_id
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(timeout=timeout_s, headers=headers, transport=transport)

    async def send(self, *, to: str, text: str) -> str:
        body = {
            "sender": self.sender,
            "to": to,
            "text": text,
            "dlt_entity_id": self.entity_id,
            "dlt_template_id": self.template_id,
        }
        last = "no attempt"
        for _ in range(2):
            started = time.monotonic()
            try:
                r = await self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                continue
            finally:
                metrics.SMS_DURATION.observe(time.monotonic() - started)
            if r.status_code >= 500:
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code >= 400:
                metrics.SMS_REQUESTS.labels("refused").inc()
                log.error("sms gateway refused the message", extra={"status": r.status_code})
                raise Unavailable("the SMS could not be sent; try again later")
            metrics.SMS_REQUESTS.labels("sent").inc()
            return str(r.json().get("id", ""))
        metrics.SMS_REQUESTS.labels("failed").inc()
        log.error("sms gateway unreachable", extra={"reason": last})
        raise Unavailable("the SMS could not be sent; try again later")

    async def aclose(self) -> None:
        await self.client.aclose()


class SmtpEmail:
    """Plain-text mail through an SMTP server: STARTTLS on the submission port (587), TLS from
    the start (465) or, for a relay on the same host or network, none. Authenticates when a
    username is set. One retry on a connection error or a 4xx (temporary) answer."""

    def __init__(self, config: EmailSettings) -> None:
        self.config = config

    async def send(self, *, to: str, subject: str, text: str) -> str:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.config.from_address, to, subject
        msg["Date"] = formatdate(localtime=False)
        domain = self.config.from_address.rpartition("@")[2].rstrip(">") or "localhost"
        # A random id that keeps the header on one line for domains up to 31 characters
        # (make_msgid's, with its time, pid and host parts, passes 78 and gets folded).
        msg["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
        msg.set_content(text)
        last = "no attempt"
        for _ in range(2):
            started = time.monotonic()
            try:
                await asyncio.to_thread(self._deliver, msg)
            except smtplib.SMTPResponseException as exc:
                if 400 <= exc.smtp_code < 500:
                    last = f"SMTP {exc.smtp_code}"
                    continue
                metrics.EMAIL_REQUESTS.labels("refused").inc()
                log.error("smtp server refused the message", extra={"code": exc.smtp_code})
                raise Unavailable("the email could not be sent; try again later") from None
            except (OSError, smtplib.SMTPException) as exc:
                last = type(exc).__name__
                continue
            finally:
                metrics.EMAIL_DURATION.observe(time.monotonic() - started)
            metrics.EMAIL_REQUESTS.labels("sent").inc()
            return str(msg["Message-ID"])
        metrics.EMAIL_REQUESTS.labels("failed").inc()
        log.error("smtp server unreachable", extra={"reason": last})
        raise Unavailable("the email could not be sent; try again later")

    def _deliver(self, msg: EmailMessage) -> None:
        c = self.config
        tls = ssl.create_default_context()
        smtp: smtplib.SMTP
        if c.tls == "tls":
            smtp = smtplib.SMTP_SSL(c.smtp_host, c.smtp_port, timeout=c.timeout_s, context=tls)
        else:
            smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout_s)
        with smtp:
            if c.tls == "starttls":
                smtp.starttls(context=tls)
            if c.smtp_username:
                smtp.login(c.smtp_username, c.smtp_password.get_secret_value())
            smtp.send_message(msg)

    async def aclose(self) -> None:
        return None


@dataclass
class Notifier:
    sms: SmsProvider
    email: EmailProvider

    async def aclose(self) -> None:
        await self.sms.aclose()
        await self.email.aclose()


def build(settings: Settings) -> Notifier:
    sms: SmsProvider
    config = settings.sms
    if config.provider == "http":
        sms = HttpSms(
            url=config.gateway_url,
            token=config.gateway_token.get_secret_value(),
            sender=config.sender_id,
            entity_id=config.dlt_entity_id,
            template_id=config.dlt_template_id,
        )
    else:
        sms = ConsoleSms()
    email: EmailProvider = SmtpEmail(settings.email) if settings.email.provider == "smtp" else ConsoleEmail()
    return Notifier(sms=sms, email=email)
