"""`/v1/auth/*`: sign-up, sign-in, tokens, sessions and passwords; `/.well-known/jwks.json`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status

from kirana.api import errors
from kirana.api.access.deps import CurrentUser, Public, RuntimeDep, StepUp
from kirana.api.accounts import contacts, flows, signups
from kirana.api.accounts import service as accounts
from kirana.api.accounts.models import User
from kirana.api.accounts.schemas import (
    Accepted,
    AccountRead,
    ChallengeIn,
    ContactUpdateIn,
    ContactVerifyIn,
    LoginIn,
    LoginTwoFactorIn,
    MeRead,
    PasswordChangeIn,
    RefreshIn,
    RegisterIn,
    RegisterVerifyIn,
    ResetIn,
    ResetRequestIn,
    RevokeAllIn,
    SessionRead,
    SignupAccepted,
    TokenPair,
    TwoFactorChallenge,
)
from kirana.api.audit.deps import AuditCtx
from kirana.api.contract.document import raising
from kirana.api.deps import SessionDep
from kirana.api.errors import NotFound
from kirana.api.inputs import Text
from kirana.api.twofactor.schemas import Sent

router = APIRouter(
    prefix="/v1/auth",
    tags=["accounts"],
    # the sign-in flows: wrong credentials or codes, abuse limits, a text message that failed
    responses=raising(errors.Unauthorized, errors.RateLimited, errors.InvalidState, errors.Unavailable),
)
wellknown = APIRouter(tags=["accounts"])


GuestCartToken = Annotated[Text | None, Header(alias="X-Cart-Token", min_length=16, max_length=200)]


def _pair(t: flows.Tokens) -> TokenPair:
    return TokenPair(
        access_token=t.access_token,
        expires_in=t.expires_in,
        refresh_token=t.refresh_token,
        session_id=t.session_id,
    )


@router.post("/register", status_code=status.HTTP_202_ACCEPTED, dependencies=[Public])
async def register(body: RegisterIn, rt: RuntimeDep, ctx: AuditCtx) -> SignupAccepted:
    """Sign up: a six-digit code goes to the email and to the phone given, and the account exists
    once one comes back (`POST /v1/auth/register/verify`). Until then the address is taken by
    nobody and signs nobody in. The answer is the same whether or not the email/phone was taken
    (the owner of a taken one is told)."""
    token = await flows.register(
        rt, ctx, email=body.email, phone=body.phone, password=body.password, name=body.name
    )
    return SignupAccepted(
        detail="a code is on its way to each new address: confirm it to create the account", signup=token
    )


@router.post("/register/verify", dependencies=[Public], responses=raising(errors.Conflict))
async def verify_registration(body: RegisterVerifyIn, rt: RuntimeDep, ctx: AuditCtx) -> AccountRead:
    """Confirm a sign-up with its token and the code sent to its email or phone: the first code
    creates the account with that identifier, the other one (if given) adds it; then sign in. A
    wrong code, or an unknown or expired sign-up, answers 422 (five wrong codes drop the
    sign-up); an address a verified account took meanwhile answers 409."""
    user = await signups.confirm(rt, ctx, token=body.signup, code=body.code)
    return AccountRead(id=user.id, email=user.email, phone=user.phone)


@router.post("/login", dependencies=[Public], responses={429: {"description": "Too many attempts"}})
async def login(
    body: LoginIn, rt: RuntimeDep, ctx: AuditCtx, cart_token: GuestCartToken = None
) -> TokenPair | TwoFactorChallenge:
    """Password sign-in; accounts with 2FA get a challenge for `POST /v1/auth/login/2fa`.

    Send the guest cart's `X-Cart-Token` (here or on `/v1/auth/login/2fa`) to fold that cart into
    the account's cart as the session opens.
    """
    result = await flows.login(
        rt, ctx, identifier=body.identifier, password=body.password, guest_cart_token=cart_token
    )
    if isinstance(result, flows.Challenge):
        return TwoFactorChallenge(challenge=result.challenge, methods=result.methods)
    return _pair(result)


@router.post("/login/2fa", dependencies=[Public])
async def login_two_factor(
    body: LoginTwoFactorIn, rt: RuntimeDep, ctx: AuditCtx, cart_token: GuestCartToken = None
) -> TokenPair:
    """Finish a 2FA sign-in: the challenge from `/v1/auth/login` and a TOTP, SMS or recovery code."""
    return _pair(
        await flows.login_second_factor(
            rt,
            ctx,
            challenge=body.challenge,
            method=body.method,
            code=body.code,
            guest_cart_token=cart_token,
        )
    )


@router.post("/login/2fa/sms", dependencies=[Public])
async def login_send_sms(body: ChallengeIn, rt: RuntimeDep, ctx: AuditCtx) -> Sent:
    """Text a sign-in code to the account's mobile number for a pending 2FA challenge."""
    return Sent(to=await flows.login_send_sms(rt, ctx, challenge=body.challenge))


@router.post("/refresh", dependencies=[Public])
async def refresh(body: RefreshIn, rt: RuntimeDep, ctx: AuditCtx) -> TokenPair:
    """Spend a refresh token for a new pair. Reusing a spent one signs the session out."""
    return _pair(await flows.refresh(rt, ctx, token=body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> Response:
    """Sign out this session (its refresh token stops working at once)."""
    await flows.revoke(rt, ctx, me, reason="logout", only=me.session_id)
    return Response(status_code=204)


@router.get("/me")
async def me(me: CurrentUser, session: SessionDep) -> MeRead:
    """The signed-in account: contact details, roles and two-factor state."""
    user = await session.get(User, me.user_id)
    if user is None:
        raise NotFound("no such user")
    return MeRead(
        id=user.id,
        email=user.email,
        phone=user.phone,
        name=user.name,
        roles=sorted(me.roles),
        permissions=sorted(me.permissions),
        denied=sorted(me.denied),
        scopes=sorted(me.scopes),
        two_factor_enabled=me.extra.get("two_factor_enabled") == "yes",
        two_factor_required=me.extra.get("needs_two_factor") == "yes",
    )


@router.patch("/me", dependencies=[StepUp], status_code=status.HTTP_202_ACCEPTED)
async def update_contact(
    body: ContactUpdateIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx
) -> dict[str, Any]:
    """Ask to change email or mobile number (needs a recent step-up): a code goes to each new
    address, and nothing changes until it comes back (`POST /v1/auth/me/verify`)."""
    pending = await contacts.request_change(rt, ctx, me, email=body.email, phone=body.phone)
    return {"pending": pending, "expires_in": int(contacts.CODE_TTL.total_seconds())}


@router.post("/me/verify")
async def verify_contact(
    body: ContactVerifyIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx
) -> dict[str, Any]:
    """Confirm a new email or number with the code sent to it; the old one is told."""
    user = await contacts.confirm_change(rt, ctx, me, kind=body.kind, code=body.code)
    return {"id": str(user.id), "email": user.email, "phone": user.phone}


@router.get("/sessions")
async def sessions(me: CurrentUser, session: SessionDep) -> list[SessionRead]:
    """The account's live sessions (devices), the current one marked."""
    rows = await accounts.list_sessions(session, user_id=me.user_id)
    return [SessionRead.model_validate(r).model_copy(update={"current": r.id == me.session_id}) for r in rows]


# `:uuid`: only an id takes the path, so `DELETE /sessions/revoke-all` is a 405, not a 422
@router.delete("/sessions/{session_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(session_id: uuid.UUID, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> Response:
    """Sign out one of the account's sessions."""
    if not await flows.revoke(rt, ctx, me, reason="session_revoked", only=session_id):
        raise NotFound("no such active session")
    return Response(status_code=204)


@router.post("/sessions/revoke-all")
async def revoke_all(body: RevokeAllIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> dict[str, int]:
    """Sign out every session of the account (optionally keeping this one)."""
    n = await flows.revoke(
        rt, ctx, me, reason="sessions_revoked_all", keep=me.session_id if body.keep_current else None
    )
    return {"revoked": n}


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: PasswordChangeIn, me: CurrentUser, rt: RuntimeDep, ctx: AuditCtx) -> Response:
    """New password; every other session is signed out."""
    await flows.change_password(rt, ctx, me, current=body.current_password, new=body.new_password)
    return Response(status_code=204)


@router.post("/password/reset-request", status_code=status.HTTP_202_ACCEPTED, dependencies=[Public])
async def request_reset(body: ResetRequestIn, rt: RuntimeDep, ctx: AuditCtx) -> Accepted:
    """Ask for a password reset code; the answer is the same whether or not an account matches."""
    await flows.request_reset(rt, ctx, identifier=body.identifier)
    return Accepted(detail="if an account matches, a reset code is on its way")


@router.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Public])
async def reset_password(body: ResetIn, rt: RuntimeDep, ctx: AuditCtx) -> Response:
    """Set a new password with a reset code; every session is signed out."""
    await flows.reset_password(rt, ctx, token=body.token, new_password=body.new_password)
    return Response(status_code=204)


@wellknown.get("/.well-known/jwks.json", dependencies=[Public])
async def jwks(rt: RuntimeDep) -> dict[str, Any]:
    """Public keys verifying our access tokens (current and recently retired)."""
    return rt.keys.jwks()
