"""Saved payment methods: a user's Razorpay customer and the tokens (cards, UPI ids) it holds.

Only the owner reaches them: every call is keyed by the signed-in user, never by an id the
client sends. Listing returns display fields only (network, last 4, masked VPA); deleting a
method deletes the token at Razorpay. Called by the methods routes and by checkout (which
hands Checkout the customer id so saved methods are offered). No HTTP, no commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.errors import NotFound
from kirana.api.payments import service as payments
from kirana.api.payments.gateway import Gateway, GatewayRefused, GatewayUnavailable
from kirana.api.payments.models import RazorpayCustomer


@dataclass(frozen=True)
class SavedMethod:
    token_id: str
    method: str
    label: str
    network: str | None
    last4: str | None
    vpa_masked: str | None


def mask_vpa(username: str, handle: str) -> str:
    shown = username[:2]
    return f"{shown}{'*' * max(1, len(username) - 2)}@{handle}"


def display(token: dict[str, Any]) -> SavedMethod:
    card = token.get("card") or {}
    vpa = token.get("vpa") or {}
    if token.get("method") == "card":
        label = f"{card.get('network') or 'Card'} •••• {card.get('last4') or '????'}"
        return SavedMethod(token["id"], "card", label, card.get("network"), card.get("last4"), None)
    masked = mask_vpa(str(vpa.get("username", "")), str(vpa.get("handle", "")))
    return SavedMethod(token["id"], str(token.get("method") or "upi"), masked, None, None, masked)


async def customer_id(session: AsyncSession, *, user_id: uuid.UUID) -> str | None:
    return await session.scalar(
        select(RazorpayCustomer.razorpay_customer_id).where(RazorpayCustomer.user_id == user_id)
    )


async def ensure_customer(
    session: AsyncSession,
    *,
    gateway: Gateway,
    user_id: uuid.UUID,
    email: str,
    contact: str,
    retry_after_s: int,
) -> str:
    """The user's Razorpay customer, created on first need (`fail_existing: 0` returns the
    existing one if Razorpay already has it)."""
    found = await customer_id(session, user_id=user_id)
    if found:
        return found
    try:
        made = await gateway.call(
            gateway.client.customer.create,
            {
                "email": email,
                "contact": contact,
                "fail_existing": "0",
                "notes": {"shop_user_id": str(user_id)},
            },
        )
    except GatewayUnavailable as exc:
        raise payments.unavailable(exc, retry_after_s=retry_after_s, operation="customer.create") from exc
    await session.execute(
        insert(RazorpayCustomer)
        .values(user_id=user_id, razorpay_customer_id=made["id"], created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    return str(await customer_id(session, user_id=user_id))


async def list_methods(
    session: AsyncSession, *, gateway: Gateway, user_id: uuid.UUID, retry_after_s: int
) -> list[SavedMethod]:
    cid = await customer_id(session, user_id=user_id)
    if cid is None:
        return []
    try:
        tokens = await gateway.call(gateway.client.token.all, cid, {})
    except GatewayUnavailable as exc:
        raise payments.unavailable(exc, retry_after_s=retry_after_s, operation="token.all") from exc
    return [display(t) for t in tokens.get("items", [])]


async def delete_method(
    session: AsyncSession, *, gateway: Gateway, user_id: uuid.UUID, token_id: str, retry_after_s: int
) -> None:
    cid = await customer_id(session, user_id=user_id)
    if cid is None:
        raise NotFound("no such saved method")
    try:
        await gateway.call(gateway.client.token.delete, cid, token_id, {})
    except GatewayRefused as exc:  # an unknown id is Razorpay's 400; someone else's too
        raise NotFound("no such saved method") from exc
    except GatewayUnavailable as exc:
        raise payments.unavailable(exc, retry_after_s=retry_after_s, operation="token.delete") from exc
    await audit.record(
        session,
        audit.AuditContext(actor_id=user_id),
        action="payments.method_deleted",
        target_type="razorpay_token",
        target_id=token_id,
    )
