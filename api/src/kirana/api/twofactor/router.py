"""`/v1/auth/2fa/*` and `/v1/auth/step-up`: enrol TOTP or SMS, recovery codes, step-up, disable."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from kirana.api import errors
from kirana.api.access.deps import CurrentUser, RuntimeDep, StepUp
from kirana.api.audit.deps import AuditCtx
from kirana.api.contract.document import raising
from kirana.api.twofactor import flows
from kirana.api.twofactor.schemas import (
    CodeIn,
    DisableIn,
    RecoveryCodes,
    Sent,
    StepUpIn,
    TotpEnrolment,
    TwoFactorStatus,
)

router = APIRouter(
    prefix="/v1/auth",
    tags=["two-factor"],
    # wrong codes, resend limits, a factor not enrolled (or already), a text message that failed
    responses=raising(errors.Unauthorized, errors.RateLimited, errors.InvalidState, errors.Unavailable),
)


@router.get("/2fa")
async def two_factor_status(me: CurrentUser, rt: RuntimeDep) -> TwoFactorStatus:
    """Which second factors are on, and how many recovery codes are left."""
    totp, sms, left = await flows.status(rt, me)
    return TwoFactorStatus(totp=totp, sms=sms, recovery_codes_left=left)


@router.post("/2fa/totp", dependencies=[StepUp])
async def enrol_totp(me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> TotpEnrolment:
    """Start enrolling an authenticator app: scan the QR code, then confirm with a code.
    Needs a recent step-up (the password, for accounts without 2FA): enrolling is not one."""
    e = await flows.begin_totp(rt, ctx, me)
    return TotpEnrolment(secret=e.secret, otpauth_uri=e.uri, qr_png=e.qr_png_data_uri, qr_svg=e.qr_svg)


@router.post("/2fa/totp/confirm")
async def confirm_totp(body: CodeIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> RecoveryCodes:
    """Turn the app on with its first code; returns 10 single-use recovery codes, shown once."""
    return RecoveryCodes(recovery_codes=await flows.confirm_totp(rt, ctx, me, body.code))


@router.post("/2fa/sms", dependencies=[StepUp])
async def enrol_sms(me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> Sent:
    """Send a code to the account's mobile number to turn SMS codes on."""
    user = await flows.load_user(rt, me.user_id)
    return Sent(to=await flows.send_sms(rt, ctx, user=user, purpose="enrol"))


@router.post("/2fa/sms/confirm", status_code=status.HTTP_204_NO_CONTENT, dependencies=[StepUp])
async def confirm_sms(body: CodeIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> Response:
    """Turn SMS codes on with the code just sent."""
    await flows.enable_sms(rt, ctx, me, body.code)
    return Response(status_code=204)


@router.post("/2fa/recovery-codes", dependencies=[StepUp])
async def regenerate_recovery_codes(me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> RecoveryCodes:
    """Replace the recovery codes with 10 new single-use ones, shown once."""
    return RecoveryCodes(recovery_codes=await flows.regenerate_recovery(rt, ctx, me))


@router.post("/2fa/disable", status_code=status.HTTP_204_NO_CONTENT, dependencies=[StepUp])
async def disable(body: DisableIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> Response:
    """Turn two-factor off: needs a recent step-up and the password."""
    await flows.disable(rt, ctx, me, password=body.password)
    return Response(status_code=204)


@router.post("/step-up/sms")
async def step_up_sms(me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> Sent:
    """Text a step-up code to the account's mobile number."""
    user = await flows.load_user(rt, me.user_id)
    return Sent(to=await flows.send_sms(rt, ctx, user=user, purpose="step_up"))


@router.post("/step-up")
async def step_up(body: StepUpIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> dict[str, str]:
    """Prove it is still you (a 2FA code, or the password for accounts without 2FA); sensitive
    actions then pass for a few minutes."""
    at = await flows.step_up(rt, ctx, me, method=body.method, code=body.code, password=body.password)
    return {"status": "ok", "verified_at": at.isoformat()}
