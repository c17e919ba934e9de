"""HTTP routes of offline sync for the mobile app (protocol: docs/sync-protocol.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from kirana.api import errors
from kirana.api.access.deps import OptionalUser, Require
from kirana.api.access.principal import Principal
from kirana.api.contract.document import raising
from kirana.api.deps import SessionDep, SettingsDep
from kirana.api.inputs import Int64, Text
from kirana.api.orders import placement
from kirana.api.sync import schemas as s
from kirana.api.sync import service as sync

router = APIRouter(
    prefix="/v1/sync",
    tags=["sync"],
    responses=raising(sync.CursorExpired, errors.InvalidInput),  # a cursor older than the log
)


@router.get("/pull", response_model=s.PullPage)
async def pull(
    session: SessionDep,
    principal: OptionalUser,
    cursor: Annotated[Text | None, Query(max_length=40)] = None,
    limit: Annotated[Int64, Query(ge=1, le=1000)] = 500,
) -> s.PullPage:
    """Everything that changed since `cursor` (catalog, and the caller's cart and orders)."""
    user_id = principal.user_id if principal is not None and principal.can("cart:use") else None
    return await sync.pull(session, cursor=cursor, user_id=user_id, limit=limit)


@router.post("/push", response_model=s.PushResponse)
async def push(
    request: Request,
    data: s.PushRequest,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Require("cart:use")],
) -> s.PushResponse:
    """Apply offline mutations in order, each once; answers per mutation."""
    return await sync.push(
        session,
        user_id=principal.user_id,
        mutations=data.mutations,
        policy=placement.policy_from(settings),
        may_place=principal.can("orders:create"),
        client=request.client.host if request.client else None,
    )
