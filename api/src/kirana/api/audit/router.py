"""`/v1/audit/*`: query the audit log (newest first, cursor pages) and export it as JSON lines."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from kirana.api import errors
from kirana.api.access.deps import Require
from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.audit.schemas import AuditEventRead, AuditPage
from kirana.api.contract.document import raising
from kirana.api.deps import DatabaseDep, SessionDep
from kirana.api.errors import InvalidInput
from kirana.api.inputs import Int64, IsoDateTime, Text

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=raising(errors.InvalidInput))  # cursors


async def _filters(
    actor_id: uuid.UUID | None = None,
    action: Annotated[
        Text | None, Query(max_length=100, description="exact, or a prefix like `auth.*`")
    ] = None,
    outcome: Annotated[Text | None, Query(pattern="^(ok|failed|denied)$")] = None,
    target_type: Annotated[Text | None, Query(max_length=50)] = None,
    target_id: Annotated[Text | None, Query(max_length=100)] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
) -> audit.Filters:
    return audit.Filters(
        actor_id=actor_id,
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )


FiltersDep = Annotated[audit.Filters, Depends(_filters)]


@router.get("/events")
async def events(
    session: SessionDep,
    filters: FiltersDep,
    cursor: Annotated[Text | None, Query(max_length=30)] = None,
    limit: Annotated[Int64, Query(ge=1, le=500)] = 50,
    _: Principal = Require("audit:read"),
) -> AuditPage:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    before = None
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
            raise InvalidInput("cursor is not one this API gave out")
        before = int(cursor)
    rows, nxt = await audit.page(session, filters=filters, before_seq=before, limit=limit)
    return AuditPage(
        items=[AuditEventRead.model_validate(r) for r in rows], next_cursor=str(nxt) if nxt else None
    )


@router.get("/export", response_class=StreamingResponse)
async def export(
    db: DatabaseDep, filters: FiltersDep, _: Principal = Require("audit:read")
) -> StreamingResponse:
    """Every matching event, oldest first, one JSON object per line (with hashes, so an export
    can be checked offline)."""

    async def lines() -> AsyncIterator[bytes]:
        async for row in audit.stream(db, filters=filters):
            yield (json.dumps(row, default=str, separators=(",", ":")) + "\n").encode()

    return StreamingResponse(
        lines(),
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="kirana-audit.jsonl"'},
    )
