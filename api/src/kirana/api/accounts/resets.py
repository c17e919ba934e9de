"""Password-reset requests, split so the answer reveals nothing by its timing.

The request path (`request`, called by `accounts.flows.request_reset` for
`POST /v1/auth/password/reset-request`) does the same work for every well-formed identifier,
known or not: the abuse limits and one outbox event. Looking the account up, creating the
token, auditing and sending the code happen later in a worker (`deliver`, called by the
workers' event consumer for `TOPIC`), where their cost is invisible to the caller. The event
carries the identifier, never a token: the token exists only once the worker creates it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.accounts import service as accounts
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.notify.providers import Notifier
from kirana.api.outbox import service as outbox

TOPIC = "account.password_reset_requested"
# A request not delivered within this long (a worker outage) is dropped rather than sending a
# code the person has stopped waiting for; they can ask again.
STALE_AFTER = timedelta(minutes=15)


def request(session: AsyncSession, ctx: audit.AuditContext, *, kind: str, value: str) -> None:
    """Queue the reset in the caller's transaction; identical for known and unknown accounts."""
    outbox.emit(
        session,
        topic=TOPIC,
        key=kind,
        payload={
            "kind": kind,
            "value": value,
            "ip": ctx.ip,
            "user_agent": ctx.user_agent,
            "request_id": ctx.request_id,
            "requested_at": utcnow().isoformat(),
        },
    )


async def deliver(db: Database, notifier: Notifier, *, payload: dict[str, Any], ttl_s: int) -> bool:
    """Create and send the code if the account exists and is active; True when one was sent."""
    kind, value = str(payload["kind"]), str(payload["value"])
    requested_at = datetime.fromisoformat(str(payload["requested_at"]))
    if requested_at.tzinfo is None:
        requested_at = requested_at.replace(tzinfo=UTC)
    if utcnow() - requested_at > STALE_AFTER or kind not in {"email", "phone"}:
        return False
    ctx = audit.AuditContext(
        ip=payload.get("ip"), user_agent=payload.get("user_agent"), request_id=payload.get("request_id")
    )
    async with db.session() as session:
        user = await accounts.find_user(session, kind=kind, value=value)
        if user is None or not user.is_active:
            return False
        token = await accounts.create_reset_token(session, user_id=user.id, ttl=timedelta(seconds=ttl_s))
        await audit.record(
            session,
            ctx,
            action="account.password_reset_requested",
            target_type="user",
            target_id=user.id,
            after={"via": kind},
        )
    text = (
        f"Your Kirana password reset code: {token} (valid {ttl_s // 60} minutes, once). "
        "Ignore this if it was not you."
    )
    if kind == "email":
        await notifier.email.send(to=value, subject="Reset your Kirana password", text=text)
    else:
        await notifier.sms.send(to=value, text=text)
    return True
