"""What routes declare: `CurrentUser`, `OptionalUser`, `Require("orders:refund")`, `Public`.

Every route must declare its access rule with one of these (a test walks all routes). The
principal is resolved once per request from the `Authorization: Bearer` access token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from kirana.api.access.principal import Principal
from kirana.api.errors import PermissionDenied, Unauthorized

ACCESS_RULE_ATTR = "kirana_access_rule"


async def get_principal(request: Request) -> Principal | None:
    """The caller, or None for an anonymous request. Replaced by token verification."""
    cached = getattr(request.state, "principal", None)
    return cached if isinstance(cached, Principal) else None


async def require_user(principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized("sign in to continue", headers={"WWW-Authenticate": "Bearer"})
    return principal


def Require(*permissions: str) -> Any:  # noqa: N802 - reads as a declaration on the route
    """A dependency that admits callers holding every one of `permissions`."""

    async def check(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
        missing = [p for p in permissions if not principal.can(p)]
        if missing:
            raise PermissionDenied(f"requires {', '.join(missing)}")
        return principal

    setattr(check, ACCESS_RULE_ATTR, ("require", permissions))
    return Depends(check)


async def public() -> None:
    """Marks a route as deliberately open to anonymous callers."""


async def optional_user(principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal | None:
    return principal


setattr(require_user, ACCESS_RULE_ATTR, ("user", ()))
setattr(public, ACCESS_RULE_ATTR, ("public", ()))
setattr(optional_user, ACCESS_RULE_ATTR, ("public", ()))

CurrentUser = Annotated[Principal, Depends(require_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
Public = Depends(public)
