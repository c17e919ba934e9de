"""Fixtures for commerce tests: real sign-in as a customer or staff member, and catalog factories."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text, update

from kirana.api.access.models import UserPermission, UserScope
from kirana.api.access.policy import PRIVILEGED
from kirana.api.access.principal import Principal
from kirana.api.access.runtime import AccessRuntime
from kirana.api.accounts.models import AuthSession, User
from kirana.api.catalog import schemas as cs
from kirana.api.catalog import service as catalog
from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database

CUSTOMER = frozenset({"cart:use", "orders:create"})
STAFF = frozenset(
    {
        "catalog:read",
        "catalog:write",
        "orders:read_all",
        "orders:update_status",
        "orders:cancel_any",
        "orders:refund",
    }
)


def customer(user_id: uuid.UUID | None = None) -> Principal:
    return Principal(user_id=user_id or uuid.uuid4(), permissions=CUSTOMER)


def staff(
    *, scopes: frozenset[str] = frozenset(), permissions: frozenset[str] = STAFF, stepped_up: bool = True
) -> Principal:
    """A staff member; `stepped_up`: verified a two-factor code just now (refunds need it)."""
    return Principal(
        user_id=uuid.uuid4(),
        permissions=permissions,
        scopes=scopes,
        two_factor_at=time.time() if stepped_up else None,
    )


async def ensure_user(db: Database, user_id: uuid.UUID) -> None:
    """Commerce rows reference users; a principal made up by a test gets a bare account."""
    async with db.session() as s:
        await s.execute(
            text(
                "INSERT INTO users (id, email, password_hash) VALUES (:id, :email, '!') "
                "ON CONFLICT DO NOTHING"  # concurrent first requests of one user race on email too
            ),
            {"id": user_id, "email": f"{user_id.hex}@test.invalid"},
        )


async def sign_in(app: FastAPI, principal: Principal) -> str:
    """A real bearer token of a live session for an account holding exactly what `principal`
    holds: its permissions as direct grants, its scopes, and its step-up time. Accounts with
    privileged permissions have two-factor on, as staff must, unless the principal says it
    still needs it (`extra["needs_two_factor"] == "yes"`). Every request made with the
    token goes through the production checks (signature, session, permission cache)."""
    db: Database = app.state.db
    await ensure_user(db, principal.user_id)
    now = utcnow()
    two_factor_at = datetime.fromtimestamp(principal.two_factor_at, UTC) if principal.two_factor_at else None
    async with db.session() as s:
        staff_with_2fa = any(principal.can(p) for p in PRIVILEGED)
        if staff_with_2fa and principal.extra.get("needs_two_factor") != "yes":
            await s.execute(update(User).where(User.id == principal.user_id).values(sms_2fa_enabled=True))
        for permission in sorted(principal.permissions):
            s.add(
                UserPermission(
                    user_id=principal.user_id, permission=permission, effect="allow", granted_at=now
                )
            )
        for scope in sorted(principal.scopes):
            s.add(UserScope(user_id=principal.user_id, scope=scope))
        session = AuthSession(
            user_id=principal.user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(days=1),
            two_factor_at=two_factor_at,
        )
        s.add(session)
        await s.flush()
        session_id = session.id
    runtime: AccessRuntime = app.state.access
    await runtime.invalidate(principal.user_id)
    token, _ = await runtime.keys.issue_access(user_id=principal.user_id, session_id=session_id)
    return token


Login = Callable[[Principal | None], Awaitable[Principal | None]]


@pytest.fixture
def login(app: FastAPI, client: AsyncClient) -> Login:
    """`await login(principal)` makes every following request of `client` carry a real bearer
    token of `principal` (None: anonymous), so orders take the path production takes (the
    order edge and group commit)."""
    tokens: dict[Principal, str] = {}

    async def as_(principal: Principal | None) -> Principal | None:
        if principal is None:
            client.headers.pop("Authorization", None)
            return None
        if principal not in tokens:
            tokens[principal] = await sign_in(app, principal)
        client.headers["Authorization"] = f"Bearer {tokens[principal]}"
        return principal

    return as_


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


class Catalog:
    """Creates categories, brands and products through the service layer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.n = 0

    async def category(self, slug: str = "grocery", parent: str | None = None) -> None:
        async with self.db.session() as s:
            await catalog.create_category(
                s, data=cs.CategoryCreate(slug=slug, name=slug.title(), parent=parent)
            )

    async def brand(self, slug: str) -> None:
        async with self.db.session() as s:
            await catalog.create_brand(s, data=cs.BrandCreate(slug=slug, name=slug.title()))

    async def product(
        self,
        *,
        sku: str | None = None,
        price: int = 10_000,
        mrp: int | None = None,
        stock: int = 10,
        category: str = "grocery",
        brand: str | None = None,
        title: str | None = None,
        attributes: dict[str, str] | None = None,
        tax_class: str = "gst_5",
        publish: bool = True,
        variants: list[dict[str, Any]] | None = None,
    ) -> catalog.ProductView:
        self.n += 1
        sku = sku or f"SKU-{uuid.uuid4().hex[:8].upper()}"
        variant_list = variants or [
            {
                "sku": sku,
                "price_paise": price,
                "mrp_paise": mrp or price,
                "stock": stock,
                "tax_class": tax_class,
                "attributes": attributes or {},
            }
        ]
        data = cs.ProductCreate(
            slug=f"p-{uuid.uuid4().hex[:10]}",
            title=title or f"Product {self.n}",
            category=category,
            brand=brand,
            variants=[cs.VariantCreate(**v) for v in variant_list],
            publish=publish,
        )
        async with self.db.session() as s:
            return await catalog.create_product(s, data=data)


@pytest.fixture
async def shop(db: Database) -> Catalog:
    c = Catalog(db)
    await c.category("grocery")
    return c


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}
