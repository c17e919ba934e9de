"""What routes declare: `CurrentUser`, `OptionalUser`, `Require("orders:refund")`, `Public`, `StepUp`.

Every route must declare its access rule with one of these (a test walks all routes). The
principal is resolved once per request from the `Authorization: Bearer` access token through
the process's `AccessRuntime` (signature check, then the cached effective permissions).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Request

from kirana.api.access import policy
from kirana.api.access.principal import Principal
from kirana.api.access.runtime import AccessRuntime
from kirana.api.errors import PermissionDenied, Unauthorized, raises

ACCESS_RULE_ATTR = "kirana_access_rule"


async def get_runtime(request: Request) -> AccessRuntime:
    runtime: AccessRuntime = request.app.state.access
    return runtime


@raises(Unauthorized)
async def get_principal(request: Request) -> Principal | None:
    """The caller, or None for an anonymous request; 401 for a bad or revoked token."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    header = request.headers.get("authorization")
    if not header:
        return None
    runtime: AccessRuntime = request.app.state.access
    principal = await runtime.authenticate_header(header)
    request.state.principal = principal
    return principal


@raises(Unauthorized)
async def require_user(principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized("sign in to continue", headers={"WWW-Authenticate": "Bearer"})
    return principal


def _privileged(permission: str) -> bool:
    return any(permission == p for p in policy.PRIVILEGED)


def ensure_two_factor_for(principal: Principal, *permissions: str) -> None:
    """403 when any of `permissions` is privileged and the caller, who holds privileged
    permissions, has not enabled two-factor authentication. `Require` applies it; routes that
    decide a permission from the body (e.g. a refund through order transitions) call it."""
    if principal.extra.get("needs_two_factor") == "yes" and any(_privileged(p) for p in permissions):
        raise PermissionDenied(
            "staff with administrative permissions must enable two-factor authentication first",
            extra={"reason": "two-factor-required"},
        )


def demand(principal: Principal, *permissions: str) -> None:
    """403 unless the caller holds every one of `permissions` (and, for privileged ones, has
    two-factor authentication enabled): the check `Require` makes."""
    missing = [p for p in permissions if not principal.can(p)]
    if missing:
        raise PermissionDenied(f"requires {', '.join(missing)}")
    ensure_two_factor_for(principal, *permissions)


def Require(*permissions: str) -> Any:  # capitalised: reads as a declaration on the route
    """A dependency that admits callers holding every one of `permissions`.

    Privileged permissions (`policy.PRIVILEGED`) additionally need two-factor authentication
    to be enabled on the account.
    """

    @raises(PermissionDenied)
    async def check(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
        demand(principal, *permissions)
        return principal

    setattr(check, ACCESS_RULE_ATTR, ("require", permissions))
    return Depends(check)


async def public() -> None:
    """Marks a route as deliberately open to anonymous callers."""


async def optional_user(principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal | None:
    return principal


@raises(Unauthorized)
async def require_step_up(
    request: Request, principal: Annotated[Principal, Depends(require_user)]
) -> Principal:
    """Sensitive actions need a 2FA verification (or, without 2FA, the password) in this session
    within `KIRANA_STEP_UP_TTL_S`; answers 401 `insufficient_user_authentication` (RFC 9470)."""
    window = (await get_runtime(request)).settings.step_up_ttl_s
    if principal.two_factor_at is None or time.time() - principal.two_factor_at > window:
        raise Unauthorized(
            "confirm it is you: verify a two-factor code (POST /v1/auth/step-up) and retry",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_user_authentication"'},
            extra={"reason": "step-up-required", "max_age": window},
        )
    return principal


setattr(require_user, ACCESS_RULE_ATTR, ("user", ()))
setattr(public, ACCESS_RULE_ATTR, ("public", ()))
setattr(optional_user, ACCESS_RULE_ATTR, ("public", ()))
setattr(require_step_up, ACCESS_RULE_ATTR, ("user", ()))

CurrentUser = Annotated[Principal, Depends(require_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
Public = Depends(public)
StepUp = Depends(require_step_up)

RuntimeDep = Annotated[AccessRuntime, Depends(get_runtime)]
