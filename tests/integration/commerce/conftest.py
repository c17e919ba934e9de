"""Fixtures for commerce tests: sign-in as a customer or staff member, and catalog factories."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from kirana.api.access.deps import get_principal
from kirana.api.access.principal import Principal
from kirana.api.catalog import schemas as cs
from kirana.api.catalog import service as catalog
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


@pytest.fixture
def login(app: FastAPI) -> Iterator[Callable[[Principal | None], Principal | None]]:
    """`login(principal)` makes every following request come from `principal` (None: anonymous)."""

    async def resolve() -> Principal | None:
        if principal_box[0] is not None:
            await ensure_user(app.state.db, principal_box[0].user_id)
        return principal_box[0]

    principal_box: list[Principal | None] = [None]

    def as_(principal: Principal | None) -> Principal | None:
        principal_box[0] = principal
        app.dependency_overrides[get_principal] = resolve
        return principal

    yield as_
    app.dependency_overrides.pop(get_principal, None)


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
