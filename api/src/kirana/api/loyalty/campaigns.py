"""Earn campaigns and standing earn rules: staff CRUD with store-level access, audited.

A campaign adds a bonus rate (points per ₹100) and/or a multiplier to the lines it matches
(store, category, brand) between `starts_at` and `ends_at`; without an end it is a standing
rule. Staff whose access is limited to some stores (`store:<code>` scopes) manage only those
stores' campaigns; shop-wide ones need unscoped staff. A window that ends before it starts is
refused (problem+json `campaign-window-invalid`). Called by the loyalty router. No HTTP, no commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.errors import NotFound, PermissionDenied
from kirana.api.loyalty import schemas as s
from kirana.api.loyalty.errors import CampaignWindowInvalid
from kirana.api.loyalty.models import Campaign


def _may_manage(principal: Principal, store_code: str | None) -> bool:
    if store_code is None:
        return not principal.scopes
    return principal.in_scope(f"store:{store_code}")


def _check_window(c: Campaign) -> None:
    if c.ends_at is not None and c.ends_at <= c.starts_at:
        raise CampaignWindowInvalid(
            "a campaign must end after it starts",
            extra={"starts_at": c.starts_at.isoformat(), "ends_at": c.ends_at.isoformat()},
        )


def read(c: Campaign) -> s.CampaignRead:
    return s.CampaignRead.model_validate(c, from_attributes=True)


def _snapshot(c: Campaign) -> dict[str, Any]:
    return read(c).model_dump(mode="json")


async def create(
    session: AsyncSession, *, principal: Principal, data: s.CampaignCreate, actor: audit.AuditContext
) -> s.CampaignRead:
    """A new campaign or standing rule, within the caller's stores."""
    if not _may_manage(principal, data.store_code):
        raise PermissionDenied(
            "this store is outside your scopes"
            if data.store_code
            else "shop-wide campaigns need unscoped staff"
        )
    c = Campaign(**data.model_dump(), created_by=principal.user_id)
    _check_window(c)
    session.add(c)
    await session.flush()
    await audit.record(
        session,
        actor,
        action="loyalty.campaign_created",
        target_type="loyalty_campaign",
        target_id=c.id,
        after=_snapshot(c),
    )
    return read(c)


async def _visible(session: AsyncSession, principal: Principal, campaign_id: uuid.UUID) -> Campaign:
    c = await session.get(Campaign, campaign_id, with_for_update=True)
    if c is None or not (c.store_code is None or principal.in_scope(f"store:{c.store_code}")):
        raise NotFound("no such campaign")
    return c


async def update(
    session: AsyncSession,
    *,
    principal: Principal,
    campaign_id: uuid.UUID,
    data: s.CampaignUpdate,
    actor: audit.AuditContext,
) -> s.CampaignRead:
    """Change a campaign's name, rates or window (what it matches is fixed: make a new one)."""
    c = await _visible(session, principal, campaign_id)
    if not _may_manage(principal, c.store_code):
        raise PermissionDenied("shop-wide campaigns need unscoped staff")
    before = _snapshot(c)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is not None or field == "ends_at":
            setattr(c, field, value)
    _check_window(c)
    await session.flush()
    await audit.record(
        session,
        actor,
        action="loyalty.campaign_updated",
        target_type="loyalty_campaign",
        target_id=c.id,
        before=before,
        after=_snapshot(c),
    )
    return read(c)


async def delete(
    session: AsyncSession, *, principal: Principal, campaign_id: uuid.UUID, actor: audit.AuditContext
) -> None:
    """Remove a campaign (orders already paid keep the points it gave them)."""
    c = await _visible(session, principal, campaign_id)
    if not _may_manage(principal, c.store_code):
        raise PermissionDenied("shop-wide campaigns need unscoped staff")
    before = _snapshot(c)
    await session.delete(c)
    await session.flush()
    await audit.record(
        session,
        actor,
        action="loyalty.campaign_deleted",
        target_type="loyalty_campaign",
        target_id=campaign_id,
        before=before,
    )


async def listing(session: AsyncSession, *, principal: Principal) -> s.CampaignList:
    """Campaigns the caller may see: shop-wide ones and those of their stores."""
    rows = (await session.scalars(select(Campaign).order_by(Campaign.starts_at.desc(), Campaign.id))).all()
    return s.CampaignList(
        items=[read(c) for c in rows if c.store_code is None or principal.in_scope(f"store:{c.store_code}")]
    )


async def get(session: AsyncSession, *, principal: Principal, campaign_id: uuid.UUID) -> s.CampaignRead:
    """One campaign the caller may see."""
    c = await session.get(Campaign, campaign_id)
    if c is None or not (c.store_code is None or principal.in_scope(f"store:{c.store_code}")):
        raise NotFound("no such campaign")
    return read(c)
