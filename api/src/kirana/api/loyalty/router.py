"""HTTP routes of loyalty under /v1/loyalty: a customer's points, achievements and
leaderboards; staff adjustments (step-up, audited), customer ledgers and campaigns."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from kirana.api.access.deps import CurrentUser, Require, StepUp
from kirana.api.access.principal import Principal
from kirana.api.audit.deps import AuditCtx
from kirana.api.contract.document import raising
from kirana.api.db.base import utcnow
from kirana.api.deps import DatabaseDep, RedisDep, SessionDep, SettingsDep
from kirana.api.errors import InvalidInput, NotFound
from kirana.api.idempotency.deps import IdempotentRequiredDep
from kirana.api.inputs import Text
from kirana.api.loyalty import boards, campaigns, flows, leaderboards, unlocking
from kirana.api.loyalty import schemas as s
from kirana.api.loyalty import service as loyalty

router = APIRouter(prefix="/v1/loyalty", tags=["loyalty"])
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[Text | None, Query(max_length=200)]
Adjuster = Annotated[Principal, Require("loyalty:adjust")]
Reader = Annotated[Principal, Require("loyalty:read_all")]
Manager = Annotated[Principal, Require("loyalty:manage")]


@router.get("/me", response_model=s.BalanceRead)
async def me(session: SessionDep, settings: SettingsDep, principal: CurrentUser) -> s.BalanceRead:
    """The caller's balance, debt, pending points (paid, not yet delivered) and tier."""
    return await loyalty.balance(session, user_id=principal.user_id, settings=settings.loyalty)


@router.get("/me/ledger", response_model=s.EntryPage)
async def my_ledger(
    session: SessionDep, principal: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> s.EntryPage:
    """The caller's points history, newest first; `next_cursor` pages on."""
    return await loyalty.history(session, user_id=principal.user_id, limit=limit, cursor=cursor)


@router.get("/me/achievements", response_model=s.AchievementList)
async def my_achievements(session: SessionDep, principal: CurrentUser) -> s.AchievementList:
    """Every achievement with the caller's progress (3 of 5) and when it unlocked."""
    return await unlocking.listing(session, user_id=principal.user_id)


@router.put("/me/leaderboard-preference", response_model=s.PreferenceUpdate)
async def preference(
    data: s.PreferenceUpdate, db: DatabaseDep, redis: RedisDep, principal: CurrentUser
) -> s.PreferenceUpdate:
    """Opt out of the leaderboards (or back in); takes effect at once."""
    opted = await flows.set_opt_out(db, redis, user_id=principal.user_id, opt_out=data.leaderboard_opt_out)
    return s.PreferenceUpdate(leaderboard_opt_out=opted)


@router.post(
    "/redemptions", status_code=201, response_model=s.RedemptionRead, responses=raising(NotFound)
)  # no such order of the caller's
async def redeem(
    data: s.RedemptionCreate, session: SessionDep, settings: SettingsDep, principal: CurrentUser
) -> s.RedemptionRead:
    """Hold points against the caller's unpaid order as a discount; released if it is
    cancelled or expires. Never more than the balance or the order's allowed share."""
    return await loyalty.redeem(
        session, principal=principal, order_id=data.order_id, points=data.points, settings=settings.loyalty
    )


@router.delete("/redemptions/{order_id}", status_code=204)
async def unredeem(order_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> Response:
    """Take the points back off an order still waiting for payment."""
    await loyalty.cancel_redemption(session, principal=principal, order_id=order_id)
    return Response(status_code=204)


@router.get("/leaderboards/{period}", response_model=s.LeaderboardRead)
async def leaderboard(
    period: Annotated[Literal["week", "month", "all"], Path()],
    db: DatabaseDep,
    redis: RedisDep,
    principal: CurrentUser,
    scope: Annotated[Text, Query(max_length=110, pattern=boards.SCOPE_RE.pattern)] = "all",
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    around: Annotated[int, Query(ge=0, le=10)] = 2,
) -> s.LeaderboardRead:
    """The current week's, month's or all-time board, shop-wide or for `store:<code>` or
    `city:<name>`, with the caller's own rank and the neighbours around it. Names are masked."""
    if not boards.SCOPE_RE.match(scope):
        raise InvalidInput("scope is all, store:<code> or city:<name>", extra={"scope": scope[:110]})
    return await leaderboards.read(
        db,
        redis,
        period=period,
        scope=scope,
        user_id=principal.user_id,
        now=utcnow(),
        top=top,
        around=around,
    )


# -- staff --------------------------------------------------------------------------------


@router.get("/customers/{user_id}/ledger", response_model=s.EntryPage)
async def customer_ledger(
    user_id: uuid.UUID, session: SessionDep, _staff: Reader, limit: Limit = 50, cursor: Cursor = None
) -> s.EntryPage:
    """A customer's points history, for staff holding loyalty:read_all."""
    return await loyalty.staff_ledger(session, user_id=user_id, limit=limit, cursor=cursor)


@router.get("/customers/{user_id}", response_model=s.BalanceRead)
async def customer_balance(
    user_id: uuid.UUID, session: SessionDep, settings: SettingsDep, _staff: Reader
) -> s.BalanceRead:
    """A customer's balance and tier, for staff holding loyalty:read_all."""
    await loyalty.staff_ledger(session, user_id=user_id, limit=1, cursor=None)  # 404 for no such customer
    return await loyalty.balance(session, user_id=user_id, settings=settings.loyalty)


@router.post("/customers/{user_id}/adjustments", response_model=s.BalanceRead)
async def adjust(
    user_id: uuid.UUID,
    data: s.AdjustmentCreate,
    settings: SettingsDep,
    ctx: AuditCtx,
    principal: Adjuster,
    _stepped_up: Annotated[Principal, StepUp],  # after the permission: 403 before 401
    idem: IdempotentRequiredDep,  # the document then says the header is required (428 without)
) -> Response:
    """Add or take points with a reason; needs a two-factor step-up and an Idempotency-Key.
    A negative adjustment never takes the balance below zero."""
    key = idem.required_key()

    async def work(session: AsyncSession) -> s.BalanceRead:
        result = await loyalty.adjust(
            session,
            user_id=user_id,
            points=data.points,
            reason=data.reason,
            source=f"adjust:{principal.user_id}:{key}"[:200],
            actor=ctx.as_actor(principal.user_id),
            settings=settings.loyalty,
        )
        return result or await loyalty.balance(session, user_id=user_id, settings=settings.loyalty)

    return await idem.run(work, body=data, required=True)


@router.get("/campaigns", response_model=s.CampaignList)
async def list_campaigns(session: SessionDep, principal: Manager) -> s.CampaignList:
    """Campaigns and standing earn rules the caller may manage or see."""
    return await campaigns.listing(session, principal=principal)


@router.post("/campaigns", status_code=201, response_model=s.CampaignRead)
async def create_campaign(
    data: s.CampaignCreate, session: SessionDep, ctx: AuditCtx, principal: Manager
) -> s.CampaignRead:
    """A campaign (with an end) or a standing earn rule (without one); audited."""
    return await campaigns.create(
        session, principal=principal, data=data, actor=ctx.as_actor(principal.user_id)
    )


@router.get("/campaigns/{campaign_id}", response_model=s.CampaignRead)
async def get_campaign(campaign_id: uuid.UUID, session: SessionDep, principal: Manager) -> s.CampaignRead:
    """One campaign."""
    return await campaigns.get(session, principal=principal, campaign_id=campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=s.CampaignRead)
async def update_campaign(
    campaign_id: uuid.UUID, data: s.CampaignUpdate, session: SessionDep, ctx: AuditCtx, principal: Manager
) -> s.CampaignRead:
    """Change a campaign's name, rates or window; audited."""
    return await campaigns.update(
        session,
        principal=principal,
        campaign_id=campaign_id,
        data=data,
        actor=ctx.as_actor(principal.user_id),
    )


@router.delete("/campaigns/{campaign_id}", status_code=204)
async def delete_campaign(
    campaign_id: uuid.UUID, session: SessionDep, ctx: AuditCtx, principal: Manager
) -> Response:
    """Remove a campaign; audited."""
    await campaigns.delete(
        session, principal=principal, campaign_id=campaign_id, actor=ctx.as_actor(principal.user_id)
    )
    return Response(status_code=204)
