"""HTTP routes of payments: start a Razorpay checkout, verify Checkout's answer, webhooks.

The webhook route reads the raw body (the signature covers the bytes as sent), stores the
event and answers 200; the worker applies it (see `webhooks.py`). A bad signature is 400
problem+json, audited in a transaction of its own, counted, and changes nothing.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from kirana.api import errors
from kirana.api.access.deps import CurrentUser, Public, Require, StepUp
from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.audit.deps import AuditCtx, audit_context
from kirana.api.contract.document import raising
from kirana.api.deps import DatabaseDep, SessionDep, SettingsDep
from kirana.api.errors import InvalidInput
from kirana.api.idempotency.deps import IdempotentRequiredDep
from kirana.api.orders.models import Order
from kirana.api.payments import cod, metrics, refunds, upi, webhooks
from kirana.api.payments import flows as pay_flows
from kirana.api.payments import methods as saved
from kirana.api.payments import schemas as s
from kirana.api.payments import service as payments
from kirana.api.payments.deps import GatewayDep
from kirana.api.payments.models import CashOnDelivery

router = APIRouter(
    prefix="/v1",
    tags=["payments"],
    # no such order or payment, not payable now, and what Razorpay answers (declined, expired, down)
    responses=raising(
        errors.NotFound,
        errors.InvalidState,
        payments.PaymentDeclined,
        payments.SignatureInvalid,
        upi.PaymentExpired,
        errors.Unavailable,
    ),
)
# Razorpay's webhook on a router of its own, included first in the app (after the probes):
# Starlette matches routes in order, so the shop's busiest machine-to-machine route is found
# without walking every other route first.
hooks = APIRouter(prefix="/v1", tags=["payments"])
Payer = Annotated[Principal, Require("orders:create")]


class WebhookSignatureInvalid(InvalidInput):
    status, code, title = 400, "webhook-signature-invalid", "Webhook signature invalid"


@router.post("/orders/{order_id}/payments", status_code=201, response_model=s.CheckoutRead)
async def start(
    order_id: uuid.UUID, session: SessionDep, settings: SettingsDep, gateway: GatewayDep, principal: Payer
) -> s.CheckoutRead:
    """The Razorpay order to pay this order with; asked again, the same one while payable."""
    methods = ("upi", "card", "netbanking") + (
        ("upi_collect",) if settings.payments_upi_collect_enabled else ()
    )
    info = await payments.start_checkout(
        session,
        gateway=gateway,
        order_id=order_id,
        user_id=principal.user_id,
        methods=methods,
        retry_after_s=settings.payments_retry_after_s,
    )
    return s.CheckoutRead(
        key_id=info.key_id,
        razorpay_order_id=info.razorpay_order_id,
        amount_paise=info.amount_paise,
        currency=info.currency,
        order_id=order_id,
        order_number=info.order_number,
        description=f"Order {info.order_number}",
        prefill=s.Prefill(),
        methods=list(info.methods),
        customer_id=await saved.customer_id(session, user_id=principal.user_id),
    )


@router.post("/payments/verify", response_model=s.PaymentRead)
async def verify(
    data: s.Verify, session: SessionDep, settings: SettingsDep, gateway: GatewayDep, principal: CurrentUser
) -> s.PaymentRead:
    """Checkout's handler answer: signature checked, then the payment fetched from Razorpay
    and captured; the order becomes paid once, whichever of this and the webhook is first."""
    t0 = time.perf_counter()
    order, payment = await payments.verify(
        session,
        gateway=gateway,
        user_id=principal.user_id,
        razorpay_order_id=data.razorpay_order_id,
        razorpay_payment_id=data.razorpay_payment_id,
        razorpay_signature=data.razorpay_signature,
        retry_after_s=settings.payments_retry_after_s,
    )
    totals = await payments.totals(session, order_id=order.id)
    metrics.VERIFY_SECONDS.observe(time.perf_counter() - t0)
    return s.PaymentRead(
        order_id=order.id,
        order_status=order.status,
        razorpay_payment_id=payment.razorpay_payment_id,
        payment_status=payment.status,
        amount_paise=payment.amount_paise,
        currency=payment.currency,
        paid_paise=totals.paid_paise,
        refunded_paise=totals.refunded_paise,
    )


@hooks.post("/webhooks/razorpay", response_model=s.WebhookAck, dependencies=[Public])
async def webhook(request: Request, db: DatabaseDep, gateway: GatewayDep) -> s.WebhookAck:
    """Razorpay's webhook, public: the signature over the raw body is its credential.

    200 once stored (or already stored); the effect follows in the worker."""
    raw = await request.body()
    signature = request.headers.get("x-razorpay-signature", "")
    if not gateway.webhook_signature_ok(raw_body=raw, signature=signature):
        metrics.WEBHOOKS_RECEIVED.labels("bad_signature").inc()
        await audit.record_now(
            db,
            await audit_context(request),
            action="payments.webhook_rejected",
            outcome="bad_signature",
            target_type="webhook",
            target_id=request.headers.get("x-razorpay-event-id", "")[:60] or None,
        )
        raise WebhookSignatureInvalid("the X-Razorpay-Signature does not match the body")
    event_id, body = webhooks.parse(raw, request.headers.get("x-razorpay-event-id"))
    stored = await webhooks.accept(db, event_id=event_id, event=body["event"], raw_body=raw)
    return s.WebhookAck(status="accepted" if stored else "duplicate")


@router.post("/orders/{order_id}/payments/refunds", response_model=s.RefundRead)
async def refund(
    order_id: uuid.UUID,
    data: s.RefundCreate,
    db: DatabaseDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    ctx: AuditCtx,
    principal: Annotated[Principal, Require("payments:refund")],
    _stepped_up: Annotated[Principal, StepUp],  # after the permission: 403 before 401
    idem: IdempotentRequiredDep,
) -> Response:
    """Refund captured money, in full or in part (`amount_paise`), never above what was
    captured minus what was refunded or is being refunded. Needs a two-factor step-up and an
    Idempotency-Key. Razorpay may answer a refund `pending`; its webhooks settle it later."""
    key = idem.required_key()
    if (answered := await idem.earlier(data)) is not None:
        return answered  # a retry of a refund already answered: nothing is asked of Razorpay
    await pay_flows.staff_refund(
        db,
        gateway=gateway,
        order_id=order_id,
        amount_paise=data.amount_paise,
        reason=data.reason,
        restock=data.restock,
        idempotency_key=key,
        actor=ctx.as_actor(principal.user_id),
        principal=principal,
        retry_after_s=settings.payments_retry_after_s,
    )

    async def work(session: AsyncSession) -> s.RefundRead:
        found = await refunds.summary(session, order_id=order_id)
        return s.RefundRead(
            order_id=order_id,
            order_status=found.order_status,
            captured_paise=found.captured_paise,
            refunded_paise=found.refunded_paise,
            pending_paise=found.pending_paise,
            paid_paise=found.paid_paise,
            refund_state=found.state,
            refunds=[s.RefundItem.model_validate(r, from_attributes=True) for r in found.rows],
        )

    return await idem.run(work, body=data, required=True)


@router.post("/orders/{order_id}/payments/upi", status_code=201, response_model=s.UpiRead)
async def start_upi(
    order_id: uuid.UUID,
    data: s.UpiStart,
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    principal: Payer,
) -> s.UpiRead:
    """Start a UPI payment: intent link and QR code, or (where allowed) a Collect request.
    The order becomes paid by webhook, the reconciler or `POST /v1/payments/verify`."""
    started = await upi.start(
        session,
        gateway=gateway,
        order_id=order_id,
        user_id=principal.user_id,
        flow=data.flow,
        vpa=data.vpa,
        email=data.email,
        contact=data.contact,
        limit_paise=settings.payments_upi_limit_paise,
        collect_enabled=settings.payments_upi_collect_enabled,
        retry_after_s=settings.payments_retry_after_s,
    )
    return s.UpiRead(
        flow=started.flow,
        razorpay_order_id=started.razorpay_order_id,
        razorpay_payment_id=started.razorpay_payment_id,
        intent_url=started.intent_url,
        qr_svg=started.qr_svg,
    )


@router.post("/orders/{order_id}/payments/cod", status_code=201, response_model=s.CodRead)
async def pay_on_delivery(
    order_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: Payer
) -> s.CodRead:
    """Pay in cash at the door: the order is confirmed without payment if its total is within
    the cash-on-delivery limit and its pincode is served; asked again, the same answer."""
    policy = cod.policy_of(
        enabled=settings.payments_cod_enabled,
        limit_paise=settings.payments_cod_limit_paise,
        pincodes=settings.cod_pincodes,
    )
    order, row = await cod.confirm(session, order_id=order_id, user_id=principal.user_id, policy=policy)
    return await _cod_read(session, order, row)


@router.post("/orders/{order_id}/payments/cod/collected", response_model=s.CodRead)
async def cod_collected(
    order_id: uuid.UUID,
    data: s.CodCollect,
    session: SessionDep,
    ctx: AuditCtx,
    principal: Annotated[Principal, Require("orders:update_status")],
) -> s.CodRead:
    """Staff record the cash taken at the door (the whole total); an order out for delivery
    becomes delivered. Recorded once: asked again, the same answer."""
    order, row = await cod.collect(
        session,
        order_id=order_id,
        amount_paise=data.amount_paise,
        principal=principal,
        actor=ctx.as_actor(principal.user_id),
    )
    return await _cod_read(session, order, row)


async def _cod_read(session: AsyncSession, order: Order, row: CashOnDelivery) -> s.CodRead:
    totals = await payments.totals(session, order_id=order.id)
    return s.CodRead(
        order_id=order.id,
        order_status=order.status,
        amount_paise=row.amount_paise,
        currency=row.currency,
        collected=row.collected_at is not None,
        paid_paise=totals.paid_paise,
    )


@router.get("/me/payment-methods", response_model=s.SavedMethods)
async def my_methods(
    session: SessionDep, settings: SettingsDep, gateway: GatewayDep, principal: CurrentUser
) -> s.SavedMethods:
    """The caller's saved cards and UPI ids (display fields only)."""
    items = await saved.list_methods(
        session, gateway=gateway, user_id=principal.user_id, retry_after_s=settings.payments_retry_after_s
    )
    return s.SavedMethods(
        razorpay_customer_id=await saved.customer_id(session, user_id=principal.user_id),
        items=[s.SavedMethodRead(**vars(m)) for m in items],
    )


@router.post("/me/payment-methods/customer", response_model=s.SavedMethods, status_code=201)
async def enable_saving(
    session: SessionDep, settings: SettingsDep, gateway: GatewayDep, principal: CurrentUser
) -> s.SavedMethods:
    """Create (once) the caller's Razorpay customer, so Checkout can save methods for them."""
    cid = await saved.ensure_customer(
        session,
        gateway=gateway,
        user_id=principal.user_id,
        email=f"{principal.user_id.hex}@kirana.invalid",
        contact="+919000000000",
        retry_after_s=settings.payments_retry_after_s,
    )
    return s.SavedMethods(razorpay_customer_id=cid, items=[])


class _TokenId(Convertor[str]):
    """A Razorpay token id (`token_` and its key): only one takes the path, so `DELETE
    /me/payment-methods/customer` is a 405 (the path is `POST`'s), not a search for a token."""

    regex = "token_[A-Za-z0-9]{1,34}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("razorpay_token", _TokenId())


@router.delete("/me/payment-methods/{token_id:razorpay_token}", status_code=204)
async def delete_method(
    token_id: Annotated[str, Path(min_length=7, max_length=40, pattern=r"^token_[A-Za-z0-9]+$")],
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    principal: CurrentUser,
) -> Response:
    """Delete a saved method here and its token at Razorpay."""
    await saved.delete_method(
        session,
        gateway=gateway,
        user_id=principal.user_id,
        token_id=token_id,
        retry_after_s=settings.payments_retry_after_s,
    )
    return Response(status_code=204)
