"""The SQL of order placement, and the types of its rows and parameters.

Used by `orders.placement` (which runs the statements alone) and `orders.batch` (which composes
the fragments with the idempotency claim into fewer round trips). The CTE names that composed
statements rely on: `o` (the orders), `w` (their lines), `stock`, `placed` (the inserted orders,
read by `event` and by the composing statement), `lines`, `history`, `changes`, `event`; a
fragment joined to these must not reuse them. The rows and parameters are `TypedDict`s, so a
renamed column is a type error (or a KeyError naming it), not a wrong order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import text

from kirana.api.db.raw import Statement

# Fragments, run alone by `orders.placement` and composed by `orders.batch`.
LOCK_SELECT = """
    SELECT v.id, v.product_id, v.sku, v.price_paise, v.mrp_paise, v.tax_class, v.stock,
           v.is_active AND p.is_published AS sellable, p.title, v.attributes
    FROM catalog_variants v JOIN catalog_products p ON p.id = v.product_id
    WHERE v.sku = ANY(CAST(:skus AS varchar[]))
    ORDER BY v.id
    FOR UPDATE OF v"""

# Order numbers come from the sequence unless given (`:numbers`, NULL for "next").
WRITE_CTES = """
    o AS MATERIALIZED (
        SELECT * FROM unnest(
            CAST(:order_ids AS uuid[]), CAST(:user_ids AS uuid[]), CAST(:store_codes AS text[]),
            CAST(:subtotals AS bigint[]), CAST(:mrp_totals AS bigint[]), CAST(:taxes AS bigint[]),
            CAST(:totals AS bigint[]), CAST(:item_counts AS int[]), CAST(:addresses AS text[]),
            CAST(:reservations AS interval[]), CAST(:numbers AS bigint[]),
            CAST(:client_ips AS inet[])
        ) WITH ORDINALITY AS o(id, user_id, store_code, subtotal, mrp_total, tax, total, item_count,
                               address, reservation, number, client_ip, ord)
    ), w AS MATERIALIZED (
        SELECT * FROM unnest(
            CAST(:line_orders AS uuid[]), CAST(:variant_ids AS uuid[]), CAST(:quantities AS int[]),
            CAST(:unit_prices AS bigint[]), CAST(:unit_mrps AS bigint[]), CAST(:tax_rates AS int[]),
            CAST(:line_taxes AS bigint[]), CAST(:line_totals AS bigint[])
        ) AS w(order_id, variant_id, quantity, unit_price, unit_mrp, tax_rate, tax, total)
    ), stock AS (
        UPDATE catalog_variants v SET stock = v.stock - t.quantity, updated_at = now()
        FROM (SELECT variant_id, sum(quantity) AS quantity FROM w GROUP BY variant_id) t
        WHERE v.id = t.variant_id
    ), placed AS (
        INSERT INTO orders (id, number, user_id, store_code, status, currency, subtotal_paise,
                            mrp_total_paise, tax_paise, total_paise, item_count, shipping_address,
                            reservation_expires_at, client_ip)
        SELECT id, coalesce(number, nextval('order_number_seq')), user_id, store_code,
               'pending_payment', 'INR', subtotal, mrp_total, tax, total, item_count,
               CAST(address AS jsonb), now() + reservation, client_ip
        FROM o ORDER BY ord
        RETURNING id, user_id, store_code, total_paise, number, created_at, reservation_expires_at
    ), lines AS (
        INSERT INTO order_lines (id, order_id, variant_id, product_id, sku, title, attributes,
                                 quantity, unit_price_paise, unit_mrp_paise, tax_rate_percent,
                                 tax_paise, line_total_paise)
        SELECT gen_random_uuid(), w.order_id, v.id, v.product_id, v.sku, p.title, v.attributes,
               w.quantity, w.unit_price, w.unit_mrp, w.tax_rate, w.tax, w.total
        FROM w JOIN catalog_variants v ON v.id = w.variant_id
        JOIN catalog_products p ON p.id = v.product_id
    ), history AS (
        INSERT INTO order_events (order_id, from_status, to_status, actor_id, actor_kind, created_at)
        SELECT id, NULL, 'pending_payment', user_id, 'customer', now() FROM o ORDER BY ord
    ), changes AS (
        INSERT INTO sync_changes (entity, entity_id, user_id, deleted, created_at)
        SELECT 'order', id, user_id, false, now() FROM o
        UNION ALL
        SELECT DISTINCT 'product', v.product_id, NULL::uuid, false, now()
        FROM w JOIN catalog_variants v ON v.id = w.variant_id
    ), event AS (
        INSERT INTO outbox_events (topic, key, payload)
        SELECT 'order.placed', CAST(id AS text), jsonb_build_object(
            'order_id', CAST(id AS text), 'number', number, 'user_id', CAST(user_id AS text),
            'store_code', store_code, 'total_paise', total_paise,
            'reservation_expires_at', reservation_expires_at)
        FROM placed ORDER BY number
    )"""

# What the customers' unpaid orders reserve (`orders.unpaid`); few rows: the caps bound them.
# At most :unpaid_read (NULL: all) unpaid orders per customer, by the partial index: awaiting
# payment, or confirmed for cash on delivery (stock held, nothing paid yet).
UNPAID_SELECT = """
    SELECT o.user_id, o.id AS order_id, l.sku, l.quantity
    FROM unnest(CAST(:unpaid_users AS uuid[])) AS u(id)
    CROSS JOIN LATERAL (
        SELECT id, user_id FROM orders
        WHERE user_id = u.id AND status IN ('pending_payment', 'confirmed')
        LIMIT CAST(:unpaid_read AS bigint)) o
    JOIN order_lines l ON l.order_id = o.id"""

# The unpaid orders placed from these client addresses (`orders.unpaid.check_ip`), by any
# account: at most :unpaid_ip_read per address, through the partial index of unpaid orders by
# address.
UNPAID_BY_IP_SELECT = """
    SELECT host(o.client_ip) AS client_ip, o.id AS order_id
    FROM unnest(CAST(:unpaid_ips AS inet[])) AS u(ip)
    CROSS JOIN LATERAL (
        SELECT id, client_ip FROM orders
        WHERE client_ip = u.ip AND status IN ('pending_payment', 'confirmed')
        LIMIT CAST(:unpaid_ip_read AS bigint)) o"""

# The advisory locks of the customers who place (`unpaid.lock_keys`: [class, key] pairs, in the
# order to take them), so that their holdings read by a later statement include every order of
# theirs committed before. Run alone: a statement's snapshot is taken before its locks wait.
HOLDER_LOCKS = Statement(
    text(
        """
    SELECT pg_advisory_xact_lock(l.class, l.key) IS NULL
    FROM unnest(CAST(:lock_classes AS int[]), CAST(:lock_keys AS int[]))
         WITH ORDINALITY AS l(class, key, ord)
    ORDER BY l.ord"""
    )
)
LOCK_VARIANTS = Statement(text(LOCK_SELECT))
UNPAID = Statement(text(UNPAID_SELECT))
UNPAID_BY_IP = Statement(text(UNPAID_BY_IP_SELECT))


class LockedVariant(TypedDict):
    """A row of LOCK_SELECT: what placement checks and copies into the order lines."""

    id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    price_paise: int
    mrp_paise: int
    tax_class: str
    stock: int
    sellable: bool
    title: str
    attributes: dict[str, Any]


def locked_variant(row: Mapping[str, Any]) -> LockedVariant:
    """A LOCK_SELECT row in either of its two arrival forms: an asyncpg record (`lock_variants`)
    or an object of the `json_agg` that `orders.batch` reads it through (ids as text). A column
    renamed in the SQL fails here, by name, rather than somewhere in pricing."""
    return LockedVariant(
        id=_uuid(row["id"]),
        product_id=_uuid(row["product_id"]),
        sku=row["sku"],
        price_paise=row["price_paise"],
        mrp_paise=row["mrp_paise"],
        tax_class=row["tax_class"],
        stock=row["stock"],
        sellable=row["sellable"],
        title=row["title"],
        attributes=row["attributes"],
    )


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


class WriteParams(TypedDict):
    """The parameters of WRITE_CTES: one array per column, orders first, then their lines."""

    order_ids: list[uuid.UUID]
    user_ids: list[uuid.UUID]
    store_codes: list[str]
    subtotals: list[int]
    mrp_totals: list[int]
    taxes: list[int]
    totals: list[int]
    item_counts: list[int]
    addresses: list[str | None]
    reservations: list[timedelta]
    numbers: list[int | None]
    client_ips: list[str | None]
    line_orders: list[uuid.UUID]
    variant_ids: list[uuid.UUID]
    quantities: list[int]
    unit_prices: list[int]
    unit_mrps: list[int]
    tax_rates: list[int]
    line_taxes: list[int]
    line_totals: list[int]


class WrittenOrder(TypedDict):
    """A row `write_orders` reads back: what the insert decided."""

    id: uuid.UUID
    number: int
    created_at: datetime


WRITE_ORDERS = Statement(text(f"WITH {WRITE_CTES} SELECT id, number, created_at FROM placed"))
